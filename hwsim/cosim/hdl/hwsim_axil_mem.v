// hwsim_axil_mem: an AXI4-Lite memory slave served by the memory shim (simulation only).
//
// Every access reads or writes the attached memory of shim space SPACE directly (hwsim_shm.c), so a
// DUT's writes land in the numpy views of the Python process, with no Python per access. 32- or 64-bit
// data under byte strobes; an access outside the attached memory answers SLVERR and is counted
// (ShmLib.ERRORS), the memory untouched. One read and one write at a time (independent). Knobs
// (hwsim_mem_knobs.vh): `latency` clocks from the request to the answer, `stall` for back-pressure
// (AWREADY, WREADY and ARREADY withheld).
`timescale 1ns/1ps
`default_nettype none
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_axil_mem #(
    parameter SPACE   = 0,
    parameter ADDR_W  = 32,
    parameter DATA_W  = 32,          // 32 or 64
    parameter LATENCY = 0,
    parameter STALL   = 0
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire [ADDR_W-1:0]   s_axil_awaddr,
    input  wire [2:0]          s_axil_awprot,
    input  wire                s_axil_awvalid,
    output wire                s_axil_awready,
    input  wire [DATA_W-1:0]   s_axil_wdata,
    input  wire [DATA_W/8-1:0] s_axil_wstrb,
    input  wire                s_axil_wvalid,
    output wire                s_axil_wready,
    output reg  [1:0]          s_axil_bresp = 2'd0,
    output reg                 s_axil_bvalid = 1'b0,
    input  wire                s_axil_bready,
    input  wire [ADDR_W-1:0]   s_axil_araddr,
    input  wire [2:0]          s_axil_arprot,
    input  wire                s_axil_arvalid,
    output wire                s_axil_arready,
    output reg  [DATA_W-1:0]   s_axil_rdata = {DATA_W{1'b0}},
    output reg  [1:0]          s_axil_rresp = 2'd0,
    output reg                 s_axil_rvalid = 1'b0,
    input  wire                s_axil_rready
);
`include "hwsim_shm.vh"
`include "hwsim_mem_knobs.vh"

    // ---- writes: AW and W in either order, then the write, `latency` clocks, B --------------------
    reg                aw_have = 1'b0, w_have = 1'b0, b_wait = 1'b0;
    reg  [63:0]        aw_addr = 64'd0;
    reg  [DATA_W-1:0]  w_data = {DATA_W{1'b0}};
    reg  [BYTES-1:0]   w_strb = {BYTES{1'b0}};
    reg  [15:0]        w_count = 16'd0;
    wire [63:0]        w_word = aw_addr & ~(BYTES - 1);
    wire               w_fire = aw_have && w_have && !b_wait && !s_axil_bvalid;

    assign s_axil_awready = rst_n && !aw_have && go_w;
    assign s_axil_wready  = rst_n && !w_have && go_w;

    always @(posedge clk) begin
        if (!rst_n) begin
            aw_have <= 1'b0;
            w_have  <= 1'b0;
            b_wait  <= 1'b0;
            s_axil_bvalid <= 1'b0;
        end else begin
            if (s_axil_awvalid && s_axil_awready) begin
                aw_have <= 1'b1;
                aw_addr <= s_axil_awaddr;
            end
            if (s_axil_wvalid && s_axil_wready) begin
                w_have <= 1'b1;
                w_data <= s_axil_wdata;
                w_strb <= s_axil_wstrb;
            end
            if (w_fire) begin
                if (mem_inside(w_word)) begin
                    mem_store(w_word, w_data, w_strb);
                    s_axil_bresp <= 2'd0;
                end else begin
                    `SHM_ERROR(SPACE);
                    s_axil_bresp <= 2'd2;
                end
                if (latency == 16'd0)
                    s_axil_bvalid <= 1'b1;
                else begin
                    b_wait  <= 1'b1;
                    w_count <= latency - 16'd1;
                end
            end
            if (b_wait) begin
                if (w_count == 16'd0) begin
                    b_wait <= 1'b0;
                    s_axil_bvalid <= 1'b1;
                end else
                    w_count <= w_count - 16'd1;
            end
            if (s_axil_bvalid && s_axil_bready) begin
                s_axil_bvalid <= 1'b0;
                aw_have <= 1'b0;
                w_have  <= 1'b0;
            end
        end
    end

    // ---- reads: AR, `latency` clocks, R ---------------------------------------------------------
    reg         r_wait = 1'b0;
    reg  [63:0] ar_addr = 64'd0;
    reg  [15:0] r_count = 16'd0;
    wire        ar_take = s_axil_arvalid && s_axil_arready;
    wire        r_fire  = r_wait ? (r_count == 16'd0) : (ar_take && latency == 16'd0);
    wire [63:0] ar_in   = s_axil_araddr;   // zero-extended
    wire [63:0] r_word  = (r_wait ? ar_addr : ar_in) & ~(BYTES - 1);

    assign s_axil_arready = rst_n && !r_wait && !s_axil_rvalid && go_r;

    always @(posedge clk) begin
        if (!rst_n) begin
            r_wait <= 1'b0;
            s_axil_rvalid <= 1'b0;
        end else begin
            if (s_axil_rvalid && s_axil_rready)
                s_axil_rvalid <= 1'b0;
            if (r_fire) begin
                if (mem_inside(r_word)) begin
                    s_axil_rdata <= mem_load(r_word);
                    s_axil_rresp <= 2'd0;
                end else begin
                    `SHM_ERROR(SPACE);
                    s_axil_rdata <= {DATA_W{1'b1}};
                    s_axil_rresp <= 2'd2;
                end
                s_axil_rvalid <= 1'b1;
                r_wait <= 1'b0;
            end else if (ar_take) begin
                r_wait  <= 1'b1;
                ar_addr <= s_axil_araddr;
                r_count <= latency - 16'd1;
            end else if (r_wait)
                r_count <= r_count - 16'd1;
        end
    end
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
