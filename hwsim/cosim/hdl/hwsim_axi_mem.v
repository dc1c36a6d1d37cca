// hwsim_axi_mem: an AXI4 memory slave served by the memory shim (simulation only).
//
// Every beat reads or writes the attached memory of shim space SPACE directly (hwsim_shm.c): a DUT's DMA
// lands in the numpy views of the Python process, with no Python per beat. Bursts of every type (FIXED,
// INCR, WRAP) and length (1..256 beats) and narrow sizes; a beat outside the attached memory answers
// SLVERR (reads per beat, writes in BRESP) and is counted (ShmLib.ERRORS), the memory untouched. One
// read and one write burst at a time (independent). Knobs, writable at run time: `latency` clocks
// between the address and the first read beat or the write response, and `stall` (0..255): READY and
// RVALID held low on about stall/256 of the cycles (pseudo-random), for back-pressure.
`timescale 1ns/1ps
`default_nettype none
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_axi_mem #(
    parameter SPACE   = 0,
    parameter ADDR_W  = 64,
    parameter DATA_W  = 64,          // 32 or 64
    parameter ID_W    = 4,
    parameter LATENCY = 0,
    parameter STALL   = 0
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire [ID_W-1:0]     s_axi_awid,
    input  wire [ADDR_W-1:0]   s_axi_awaddr,
    input  wire [7:0]          s_axi_awlen,
    input  wire [2:0]          s_axi_awsize,
    input  wire [1:0]          s_axi_awburst,
    input  wire                s_axi_awvalid,
    output wire                s_axi_awready,
    input  wire [DATA_W-1:0]   s_axi_wdata,
    input  wire [DATA_W/8-1:0] s_axi_wstrb,
    input  wire                s_axi_wlast,
    input  wire                s_axi_wvalid,
    output wire                s_axi_wready,
    output reg  [ID_W-1:0]     s_axi_bid,
    output reg  [1:0]          s_axi_bresp,
    output reg                 s_axi_bvalid,
    input  wire                s_axi_bready,
    input  wire [ID_W-1:0]     s_axi_arid,
    input  wire [ADDR_W-1:0]   s_axi_araddr,
    input  wire [7:0]          s_axi_arlen,
    input  wire [2:0]          s_axi_arsize,
    input  wire [1:0]          s_axi_arburst,
    input  wire                s_axi_arvalid,
    output wire                s_axi_arready,
    output reg  [ID_W-1:0]     s_axi_rid,
    output reg  [DATA_W-1:0]   s_axi_rdata,
    output reg  [1:0]          s_axi_rresp,
    output reg                 s_axi_rlast,
    output reg                 s_axi_rvalid,
    input  wire                s_axi_rready
);
`include "hwsim_shm.vh"
`include "hwsim_mem_knobs.vh"

    // the address of beat `n` after `a` (AXI4 A3.4.1): FIXED stays, INCR steps by the size (from the
    // aligned start), WRAP steps and wraps inside the (len + 1) * size aligned window
    function [63:0] next_addr(input [63:0] a, input [2:0] size, input [1:0] burst, input [7:0] len,
                              input [63:0] start);
        reg [63:0] step, span, lo;
        begin
            step = 64'd1 << size;
            span = step * ({56'd0, len} + 64'd1);
            lo   = start & ~(span - 64'd1);
            if (burst == 2'd0)
                next_addr = a;
            else if (burst == 2'd2)
                next_addr = (((a & ~(step - 64'd1)) + step) >= lo + span) ? lo : ((a & ~(step - 64'd1)) + step);
            else
                next_addr = (a & ~(step - 64'd1)) + step;
        end
    endfunction

    // ---- writes -------------------------------------------------------------------------------------
    reg         w_busy = 1'b0, w_resp = 1'b0, w_err = 1'b0;
    reg  [63:0] w_addr = 64'd0, w_start = 64'd0;
    reg  [7:0]  w_len = 8'd0;
    reg  [2:0]  w_size = 3'd0;
    reg  [1:0]  w_burst = 2'd0;
    reg  [15:0] w_wait = 16'd0;
    wire [63:0] w_word = w_addr & ~(BYTES - 1);

    assign s_axi_awready = rst_n && !w_busy && !w_resp && !s_axi_bvalid;
    assign s_axi_wready  = rst_n && w_busy && go_w;

    always @(posedge clk) begin
        if (!rst_n) begin
            w_busy <= 1'b0;
            w_resp <= 1'b0;
            s_axi_bvalid <= 1'b0;
        end else begin
            if (s_axi_awvalid && s_axi_awready) begin
                w_busy  <= 1'b1;
                w_err   <= 1'b0;
                s_axi_bid <= s_axi_awid;
                w_addr  <= s_axi_awaddr;
                w_start <= s_axi_awaddr;
                w_len   <= s_axi_awlen;
                w_size  <= s_axi_awsize;
                w_burst <= s_axi_awburst;
            end
            if (s_axi_wvalid && s_axi_wready) begin
                if (mem_inside(w_word))
                    mem_store(w_word, s_axi_wdata, s_axi_wstrb);
                else begin
                    w_err <= 1'b1;
                    `SHM_ERROR(SPACE);
                end
                w_addr <= next_addr(w_addr, w_size, w_burst, w_len, w_start);
                if (s_axi_wlast) begin
                    w_busy <= 1'b0;
                    w_resp <= 1'b1;
                    w_wait <= latency;
                end
            end
            if (w_resp) begin
                if (w_wait == 16'd0) begin
                    w_resp <= 1'b0;
                    s_axi_bvalid <= 1'b1;
                    s_axi_bresp  <= w_err ? 2'd2 : 2'd0;
                end else
                    w_wait <= w_wait - 16'd1;
            end
            if (s_axi_bvalid && s_axi_bready)
                s_axi_bvalid <= 1'b0;
        end
    end

    // ---- reads --------------------------------------------------------------------------------------
    reg         r_busy = 1'b0;
    reg  [63:0] r_addr = 64'd0, r_start = 64'd0;
    reg  [7:0]  r_len = 8'd0, r_left = 8'd0;
    reg  [2:0]  r_size = 3'd0;
    reg  [1:0]  r_burst = 2'd0;
    reg  [15:0] r_wait = 16'd0;
    wire [63:0] r_word = r_addr & ~(BYTES - 1);
    wire        r_next = r_busy && r_wait == 16'd0 && (!s_axi_rvalid || s_axi_rready) && go_r;

    assign s_axi_arready = rst_n && !r_busy;

    always @(posedge clk) begin
        if (!rst_n) begin
            r_busy <= 1'b0;
            s_axi_rvalid <= 1'b0;
        end else begin
            if (s_axi_rvalid && s_axi_rready)
                s_axi_rvalid <= 1'b0;
            if (s_axi_arvalid && s_axi_arready) begin
                r_busy  <= 1'b1;
                s_axi_rid <= s_axi_arid;
                r_addr  <= s_axi_araddr;
                r_start <= s_axi_araddr;
                r_len   <= s_axi_arlen;
                r_left  <= s_axi_arlen;
                r_size  <= s_axi_arsize;
                r_burst <= s_axi_arburst;
                r_wait  <= latency;
            end else if (r_busy && r_wait != 16'd0)
                r_wait <= r_wait - 16'd1;
            else if (r_next) begin
                if (mem_inside(r_word)) begin
                    s_axi_rdata <= mem_load(r_word);
                    s_axi_rresp <= 2'd0;
                end else begin
                    s_axi_rdata <= {DATA_W{1'b1}};
                    s_axi_rresp <= 2'd2;
                    `SHM_ERROR(SPACE);
                end
                s_axi_rvalid <= 1'b1;
                s_axi_rlast  <= (r_left == 8'd0);
                r_addr <= next_addr(r_addr, r_size, r_burst, r_len, r_start);
                r_left <= r_left - 8'd1;
                if (r_left == 8'd0)
                    r_busy <= 1'b0;
            end
        end
    end
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
