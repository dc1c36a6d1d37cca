// hwsim_avmm_mem: an Avalon-MM memory agent served by the memory shim (simulation only).
//
// Every transfer reads or writes the attached memory of shim space SPACE directly (hwsim_shm.c), so a
// DUT's writes land in the numpy views of the Python process, with no Python per transfer. Reads answer
// with readdatavalid, writes with writeresponsevalid, both with `response` (00 OKAY; a word outside the
// attached memory answers 10 SLVERR, is counted (ShmLib.ERRORS) and leaves the memory untouched). With
// latency 0 it takes a transfer every clock (pipelined reads, answered in order one clock later); with
// latency N it answers N clocks later and holds waitrequest until then. `stall` raises waitrequest on
// about stall/256 of the cycles (hwsim_mem_knobs.vh). WORD_ADDRESS=1: `address` counts words (an agent
// behind no interconnect, as hwsim_avmm_master presents them by default); 0: bytes.
`timescale 1ns/1ps
`default_nettype none
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_avmm_mem #(
    parameter SPACE        = 0,
    parameter ADDR_W       = 32,
    parameter DATA_W       = 32,     // 32 or 64
    parameter WORD_ADDRESS = 1,
    parameter LATENCY      = 0,
    parameter STALL        = 0
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire [ADDR_W-1:0]   s_avmm_address,
    input  wire                s_avmm_read,
    input  wire                s_avmm_write,
    input  wire [DATA_W-1:0]   s_avmm_writedata,
    input  wire [DATA_W/8-1:0] s_avmm_byteenable,
    output reg  [DATA_W-1:0]   s_avmm_readdata = {DATA_W{1'b0}},
    output wire                s_avmm_waitrequest,
    output reg                 s_avmm_readdatavalid = 1'b0,
    output reg  [1:0]          s_avmm_response = 2'd0,
    output reg                 s_avmm_writeresponsevalid = 1'b0
);
`include "hwsim_shm.vh"
`include "hwsim_mem_knobs.vh"
    localparam SHIFT = (WORD_ADDRESS != 0) ? ((DATA_W == 64) ? 3 : 2) : 0;

    reg                busy = 1'b0, q_write = 1'b0;
    reg  [63:0]        q_word = 64'd0;
    reg  [DATA_W-1:0]  q_data = {DATA_W{1'b0}};
    reg  [BYTES-1:0]   q_be = {BYTES{1'b0}};
    reg  [15:0]        count = 16'd0;
    wire [63:0]        in_addr = s_avmm_address;   // zero-extended
    wire [63:0]        in_word = (in_addr << SHIFT) & ~(BYTES - 1);
    wire               take = rst_n && (s_avmm_read || s_avmm_write) && !s_avmm_waitrequest;
    wire               fire = busy ? (count == 16'd0) : (take && latency == 16'd0);
    wire               f_write = busy ? q_write : s_avmm_write;
    wire [63:0]        f_word = busy ? q_word : in_word;

    assign s_avmm_waitrequest = !rst_n || busy || !(s_avmm_write ? go_w : go_r);

    always @(posedge clk) begin
        s_avmm_readdatavalid      <= 1'b0;
        s_avmm_writeresponsevalid <= 1'b0;
        if (!rst_n)
            busy <= 1'b0;
        else if (fire) begin
            if (!mem_inside(f_word)) begin
                `SHM_ERROR(SPACE);
                s_avmm_response <= 2'd2;
                s_avmm_readdata <= {DATA_W{1'b1}};
            end else begin
                s_avmm_response <= 2'd0;
                if (f_write)
                    mem_store(f_word, busy ? q_data : s_avmm_writedata, busy ? q_be : s_avmm_byteenable);
                else
                    s_avmm_readdata <= mem_load(f_word);
            end
            if (f_write)
                s_avmm_writeresponsevalid <= 1'b1;
            else
                s_avmm_readdatavalid <= 1'b1;
            busy <= 1'b0;
        end else if (take) begin
            busy    <= 1'b1;
            q_write <= s_avmm_write;
            q_word  <= in_word;
            q_data  <= s_avmm_writedata;
            q_be    <= s_avmm_byteenable;
            count   <= latency - 16'd1;
        end else if (busy)
            count <= count - 16'd1;
    end
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
