// cocotb top level of dmacopy (simulation only): HDL clock and dmacopy_system `sys` (the engine, the HDL
// AXI4-Lite master sys.m_axil on its registers, the AXI4 memory slave sys.mem on its DMA port), so its
// copies land in the driver's DMA buffers. Python drives `rst` (active high) and waits on `irq`.
`timescale 1ns/1ps
`default_nettype none

module tb_dmacopy;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    wire irq;
    dmacopy_system sys (.clk(clk), .rst(rst), .irq(irq));

`ifndef DMACOPY_BENCH
    // a second AXI4 memory slave (shim space 3) on top-level ports, for a full AXI4 master in Python
    // (cocotbext-axi AxiMaster): every burst type, length and size of the slave (left out of the
    // benchmark's build: what it measures is the design tb_dmacopy_bench runs)
    reg  [3:0]  ext_axi_awid = 0, ext_axi_arid = 0;
    reg  [63:0] ext_axi_awaddr = 0, ext_axi_araddr = 0, ext_axi_wdata = 0;
    reg  [7:0]  ext_axi_awlen = 0, ext_axi_arlen = 0, ext_axi_wstrb = 0;
    reg  [2:0]  ext_axi_awsize = 0, ext_axi_arsize = 0;
    reg  [1:0]  ext_axi_awburst = 0, ext_axi_arburst = 0;
    reg         ext_axi_awvalid = 0, ext_axi_wlast = 0, ext_axi_wvalid = 0, ext_axi_bready = 0;
    reg         ext_axi_arvalid = 0, ext_axi_rready = 0;
    wire [3:0]  ext_axi_bid, ext_axi_rid;
    wire [63:0] ext_axi_rdata;
    wire [1:0]  ext_axi_bresp, ext_axi_rresp;
    wire        ext_axi_awready, ext_axi_wready, ext_axi_bvalid, ext_axi_arready, ext_axi_rlast, ext_axi_rvalid;
    hwsim_axi_mem #(.SPACE(3), .ADDR_W(64), .DATA_W(64), .ID_W(4)) mem2 (.clk(clk), .rst_n(!rst),
        .s_axi_awid(ext_axi_awid), .s_axi_awaddr(ext_axi_awaddr), .s_axi_awlen(ext_axi_awlen),
        .s_axi_awsize(ext_axi_awsize), .s_axi_awburst(ext_axi_awburst), .s_axi_awvalid(ext_axi_awvalid),
        .s_axi_awready(ext_axi_awready), .s_axi_wdata(ext_axi_wdata), .s_axi_wstrb(ext_axi_wstrb),
        .s_axi_wlast(ext_axi_wlast), .s_axi_wvalid(ext_axi_wvalid), .s_axi_wready(ext_axi_wready),
        .s_axi_bid(ext_axi_bid), .s_axi_bresp(ext_axi_bresp), .s_axi_bvalid(ext_axi_bvalid),
        .s_axi_bready(ext_axi_bready), .s_axi_arid(ext_axi_arid), .s_axi_araddr(ext_axi_araddr),
        .s_axi_arlen(ext_axi_arlen), .s_axi_arsize(ext_axi_arsize), .s_axi_arburst(ext_axi_arburst),
        .s_axi_arvalid(ext_axi_arvalid), .s_axi_arready(ext_axi_arready), .s_axi_rid(ext_axi_rid),
        .s_axi_rdata(ext_axi_rdata), .s_axi_rresp(ext_axi_rresp), .s_axi_rlast(ext_axi_rlast),
        .s_axi_rvalid(ext_axi_rvalid), .s_axi_rready(ext_axi_rready));
`endif
endmodule

`default_nettype wire
