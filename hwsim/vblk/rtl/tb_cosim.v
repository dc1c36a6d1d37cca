// cocotb top level (simulation only): the clock is generated here, in HDL, so that no Python runs per
// cycle; Python drives reset, the transactor's command registers (h.m) and the knobs below, and waits
// only for h.m.rsp_tgl (one bus transaction) or irq. HDL_CLOCK=0 leaves clk to a cocotb Clock instead (the usual
// cocotb set-up, kept for comparison).
`timescale 1ns/1ps
`default_nettype none

module tb_cosim #(
    parameter [63:0] HOST_BASE    = 64'h0000_0000_8000_0000,
    parameter [63:0] HOST_SIZE    = 64'h0000_0000_0100_0000,
    parameter        F_RO         = 0,
    parameter        F_FLUSH      = 1,
    parameter        F_CONFIG_WCE = 1,
    parameter        LEGACY       = 0,
    parameter        WRITEBACK    = 0,
    parameter [31:0] BLK_SIZE     = 32'd512,
    parameter [7:0]  PHYS_BLOCK_EXP = 8'd3,
    parameter        DATA_W       = 32,
    parameter        HDL_CLOCK    = 1
);
    reg         clk = 1'b0;
    generate
        if (HDL_CLOCK != 0) begin : g_clock
            always #5 clk = ~clk;  // 100 MHz
        end
    endgenerate

    reg         rst_n     = 1'b0;
    reg         bus_sel   = 1'b0;
    reg  [63:0] capacity  = 64'd0;
    reg  [63:0] media_base = 64'd0;
    reg         readonly  = 1'b0;
    reg  [7:0]  stall     = 8'd0;
    reg  [15:0] med_latency = 16'd0;
    reg  [15:0] med_latency_step = 16'd0;
    wire        irq;

    reg  [11:0] ext_axil_awaddr  = 12'd0;
    reg         ext_axil_awvalid = 1'b0;
    wire        ext_axil_awready;
    reg  [31:0] ext_axil_wdata   = 32'd0;
    reg  [3:0]  ext_axil_wstrb   = 4'd0;
    reg         ext_axil_wvalid  = 1'b0;
    wire        ext_axil_wready;
    wire [1:0]  ext_axil_bresp;
    wire        ext_axil_bvalid;
    reg         ext_axil_bready  = 1'b0;
    reg  [11:0] ext_axil_araddr  = 12'd0;
    reg         ext_axil_arvalid = 1'b0;
    wire        ext_axil_arready;
    wire [31:0] ext_axil_rdata;
    wire [1:0]  ext_axil_rresp;
    wire        ext_axil_rvalid;
    reg         ext_axil_rready  = 1'b0;

    // free-running cycle counter, for cycles-per-second figures
    reg  [63:0] cycles = 64'd0;
    always @(posedge clk)
        cycles <= cycles + 64'd1;

    tb_harness #(.HOST_BASE(HOST_BASE), .HOST_SIZE(HOST_SIZE), .F_RO(F_RO), .F_FLUSH(F_FLUSH),
                 .F_CONFIG_WCE(F_CONFIG_WCE), .LEGACY(LEGACY), .WRITEBACK(WRITEBACK), .BLK_SIZE(BLK_SIZE),
                 .PHYS_BLOCK_EXP(PHYS_BLOCK_EXP), .DATA_W(DATA_W), .REG_KNOBS(1)) h (
        .clk(clk), .rst_n(rst_n),
        .bus_sel(bus_sel),
        .ext_axil_awaddr(ext_axil_awaddr), .ext_axil_awvalid(ext_axil_awvalid),
        .ext_axil_awready(ext_axil_awready), .ext_axil_wdata(ext_axil_wdata),
        .ext_axil_wstrb(ext_axil_wstrb), .ext_axil_wvalid(ext_axil_wvalid),
        .ext_axil_wready(ext_axil_wready), .ext_axil_bresp(ext_axil_bresp),
        .ext_axil_bvalid(ext_axil_bvalid), .ext_axil_bready(ext_axil_bready),
        .ext_axil_araddr(ext_axil_araddr), .ext_axil_arvalid(ext_axil_arvalid),
        .ext_axil_arready(ext_axil_arready), .ext_axil_rdata(ext_axil_rdata),
        .ext_axil_rresp(ext_axil_rresp), .ext_axil_rvalid(ext_axil_rvalid),
        .ext_axil_rready(ext_axil_rready),
        .capacity(capacity), .media_base(media_base), .readonly(readonly), .stall(stall),
        .med_latency(med_latency), .med_latency_step(med_latency_step), .irq(irq));

`ifndef VERILATOR
    // Icarus: +vcd=FILE writes a plain VCD (WAVES=1 gives the runner's FST instead).
    reg [1023:0] vcd_file;
    initial
        if ($value$plusargs("vcd=%s", vcd_file)) begin
            $dumpfile(vcd_file);
            $dumpvars(0, tb_cosim);
        end
`endif
endmodule

`default_nettype wire
