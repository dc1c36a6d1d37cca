// The top level (Verilator) of the regcheck tests: the PeakRDL-regblock block of regcheck_regs.rdl behind the
// generic HDL AXI4-Lite master (h.m_axil). The clock is HDL; Python drives `rst` (active high, as regblock wants).
`timescale 1ns/1ps
`default_nettype none

module tb_regcheck;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    regcheck_hdl_side h (.clk(clk), .rst(rst));
endmodule

module regcheck_hdl_side (
    input wire clk,
    input wire rst
);
    wire rst_n = !rst;
    wire [5:0] a_awaddr, a_araddr; wire [2:0] a_awprot, a_arprot; wire [31:0] a_wdata, a_rdata;
    wire [3:0] a_wstrb; wire [1:0] a_bresp, a_rresp;
    wire a_awvalid, a_awready, a_wvalid, a_wready, a_bvalid, a_bready, a_arvalid, a_arready, a_rvalid, a_rready;
    hwsim_axil_master #(.ADDR_W(6), .DATA_W(32)) m_axil (.clk(clk), .rst_n(rst_n), .enable(1'b1), .busy(),
        .m_axil_awaddr(a_awaddr), .m_axil_awprot(a_awprot), .m_axil_awvalid(a_awvalid), .m_axil_awready(a_awready),
        .m_axil_wdata(a_wdata), .m_axil_wstrb(a_wstrb), .m_axil_wvalid(a_wvalid), .m_axil_wready(a_wready),
        .m_axil_bresp(a_bresp), .m_axil_bvalid(a_bvalid), .m_axil_bready(a_bready),
        .m_axil_araddr(a_araddr), .m_axil_arprot(a_arprot), .m_axil_arvalid(a_arvalid), .m_axil_arready(a_arready),
        .m_axil_rdata(a_rdata), .m_axil_rresp(a_rresp), .m_axil_rvalid(a_rvalid), .m_axil_rready(a_rready));
    regcheck_axi4lite u_regs (.clk(clk), .rst(rst),
        .s_axil_awready(a_awready), .s_axil_awvalid(a_awvalid), .s_axil_awaddr(a_awaddr), .s_axil_awprot(a_awprot),
        .s_axil_wready(a_wready), .s_axil_wvalid(a_wvalid), .s_axil_wdata(a_wdata), .s_axil_wstrb(a_wstrb),
        .s_axil_bready(a_bready), .s_axil_bvalid(a_bvalid), .s_axil_bresp(a_bresp),
        .s_axil_arready(a_arready), .s_axil_arvalid(a_arvalid), .s_axil_araddr(a_araddr), .s_axil_arprot(a_arprot),
        .s_axil_rready(a_rready), .s_axil_rvalid(a_rvalid), .s_axil_rdata(a_rdata), .s_axil_rresp(a_rresp));
endmodule
