// dmacopy_system (simulation only): dmacopy `dut` with the generic HDL AXI4-Lite master `m_axil` on its
// registers and the generic AXI4 memory slave `mem` (shim space 2) on its DMA port. One level below the
// cocotb top, so that its wires are not public signals (Verilator keeps public ones unoptimised).
`timescale 1ns/1ps
`default_nettype none

module dmacopy_system (
    input  wire clk,
    input  wire rst,
    output wire irq
);
    wire [5:0]  a_awaddr, a_araddr;
    wire [2:0]  a_awprot, a_arprot;
    wire [31:0] a_wdata, a_rdata;
    wire [3:0]  a_wstrb;
    wire [1:0]  a_bresp, a_rresp;
    wire        a_awvalid, a_awready, a_wvalid, a_wready, a_bvalid, a_bready;
    wire        a_arvalid, a_arready, a_rvalid, a_rready;

    hwsim_axil_master #(.ADDR_W(6), .DATA_W(32)) m_axil (.clk(clk), .rst_n(!rst), .enable(1'b1), .busy(),
        .m_axil_awaddr(a_awaddr), .m_axil_awprot(a_awprot), .m_axil_awvalid(a_awvalid),
        .m_axil_awready(a_awready), .m_axil_wdata(a_wdata), .m_axil_wstrb(a_wstrb), .m_axil_wvalid(a_wvalid),
        .m_axil_wready(a_wready), .m_axil_bresp(a_bresp), .m_axil_bvalid(a_bvalid), .m_axil_bready(a_bready),
        .m_axil_araddr(a_araddr), .m_axil_arprot(a_arprot), .m_axil_arvalid(a_arvalid),
        .m_axil_arready(a_arready), .m_axil_rdata(a_rdata), .m_axil_rresp(a_rresp), .m_axil_rvalid(a_rvalid),
        .m_axil_rready(a_rready));

    wire [3:0]  awid, arid, bid, rid;
    wire [63:0] awaddr, araddr, wdata, rdata;
    wire [7:0]  awlen, arlen, wstrb;
    wire [2:0]  awsize, arsize;
    wire [1:0]  awburst, arburst, bresp, rresp;
    wire        awvalid, awready, wlast, wvalid, wready, bvalid, bready;
    wire        arvalid, arready, rlast, rvalid, rready;

    dmacopy dut (.clk(clk), .rst(rst),
        .s_axil_awready(a_awready), .s_axil_awvalid(a_awvalid), .s_axil_awaddr(a_awaddr),
        .s_axil_awprot(a_awprot), .s_axil_wready(a_wready), .s_axil_wvalid(a_wvalid), .s_axil_wdata(a_wdata),
        .s_axil_wstrb(a_wstrb), .s_axil_bready(a_bready), .s_axil_bvalid(a_bvalid), .s_axil_bresp(a_bresp),
        .s_axil_arready(a_arready), .s_axil_arvalid(a_arvalid), .s_axil_araddr(a_araddr),
        .s_axil_arprot(a_arprot), .s_axil_rready(a_rready), .s_axil_rvalid(a_rvalid), .s_axil_rdata(a_rdata),
        .s_axil_rresp(a_rresp),
        .m_axi_awid(awid), .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize),
        .m_axi_awburst(awburst), .m_axi_awvalid(awvalid), .m_axi_awready(awready), .m_axi_wdata(wdata),
        .m_axi_wstrb(wstrb), .m_axi_wlast(wlast), .m_axi_wvalid(wvalid), .m_axi_wready(wready),
        .m_axi_bid(bid), .m_axi_bresp(bresp), .m_axi_bvalid(bvalid), .m_axi_bready(bready),
        .m_axi_arid(arid), .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize),
        .m_axi_arburst(arburst), .m_axi_arvalid(arvalid), .m_axi_arready(arready), .m_axi_rid(rid),
        .m_axi_rdata(rdata), .m_axi_rresp(rresp), .m_axi_rlast(rlast), .m_axi_rvalid(rvalid),
        .m_axi_rready(rready), .irq(irq));

    hwsim_axi_mem #(.SPACE(2), .ADDR_W(64), .DATA_W(64), .ID_W(4)) mem (.clk(clk), .rst_n(!rst),
        .s_axi_awid(awid), .s_axi_awaddr(awaddr), .s_axi_awlen(awlen), .s_axi_awsize(awsize),
        .s_axi_awburst(awburst), .s_axi_awvalid(awvalid), .s_axi_awready(awready), .s_axi_wdata(wdata),
        .s_axi_wstrb(wstrb), .s_axi_wlast(wlast), .s_axi_wvalid(wvalid), .s_axi_wready(wready),
        .s_axi_bid(bid), .s_axi_bresp(bresp), .s_axi_bvalid(bvalid), .s_axi_bready(bready),
        .s_axi_arid(arid), .s_axi_araddr(araddr), .s_axi_arlen(arlen), .s_axi_arsize(arsize),
        .s_axi_arburst(arburst), .s_axi_arvalid(arvalid), .s_axi_arready(arready), .s_axi_rid(rid),
        .s_axi_rdata(rdata), .s_axi_rresp(rresp), .s_axi_rlast(rlast), .s_axi_rvalid(rvalid),
        .s_axi_rready(rready));
endmodule

`default_nettype wire
