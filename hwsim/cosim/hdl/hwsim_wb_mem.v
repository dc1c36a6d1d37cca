// hwsim_wb_mem: a Wishbone B4 memory slave served by the memory shim (simulation only).
//
// Every cycle reads or writes the attached memory of shim space SPACE directly (hwsim_shm.c), so a DUT's
// writes land in the numpy views of the Python process, with no Python per access. Byte addresses,
// SEL byte selects. PIPELINED=0 (classic): a request (CYC, STB) is answered by ACK, one clock after it
// is taken; PIPELINED=1: STALL low takes it, ACK follows (with latency 0 one request per clock,
// answered in order). A word outside the attached memory answers ERR, is counted (ShmLib.ERRORS) and
// leaves the memory untouched. `latency` clocks more before the answer, `stall` refuses requests on
// about stall/256 of the cycles (hwsim_mem_knobs.vh). RTY is never answered.
`timescale 1ns/1ps
`default_nettype none
/* verilator lint_off PROCASSINIT */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_wb_mem #(
    parameter SPACE     = 0,
    parameter ADDR_W    = 32,
    parameter DATA_W    = 32,        // 32 or 64
    parameter PIPELINED = 0,
    parameter LATENCY   = 0,
    parameter STALL     = 0
) (
    input  wire                clk,
    input  wire                rst_n,

    input  wire                s_wb_cyc,
    input  wire                s_wb_stb,
    input  wire                s_wb_we,
    input  wire [ADDR_W-1:0]   s_wb_adr,
    input  wire [DATA_W-1:0]   s_wb_dat_i,
    input  wire [DATA_W/8-1:0] s_wb_sel,
    output reg  [DATA_W-1:0]   s_wb_dat_o = {DATA_W{1'b0}},
    output reg                 s_wb_ack = 1'b0,
    output reg                 s_wb_err = 1'b0,
    output wire                s_wb_stall
);
`include "hwsim_shm.vh"
`include "hwsim_mem_knobs.vh"

    reg                busy = 1'b0, q_we = 1'b0;
    reg  [63:0]        q_word = 64'd0;
    reg  [DATA_W-1:0]  q_data = {DATA_W{1'b0}};
    reg  [BYTES-1:0]   q_sel = {BYTES{1'b0}};
    reg  [15:0]        count = 16'd0;
    wire [63:0]        in_addr = s_wb_adr;   // zero-extended
    wire [63:0]        in_word = in_addr & ~(BYTES - 1);
    wire               go = s_wb_we ? go_w : go_r;
    // classic: a request not yet answered (the answer of the previous clock ends it)
    wire               take = rst_n && s_wb_cyc && s_wb_stb && !busy && go &&
                              (PIPELINED != 0 || !(s_wb_ack || s_wb_err));
    wire               fire = busy ? (count == 16'd0) : (take && latency == 16'd0);
    wire               f_we = busy ? q_we : s_wb_we;
    wire [63:0]        f_word = busy ? q_word : in_word;

    assign s_wb_stall = (PIPELINED != 0) && (!rst_n || busy || !go);

    always @(posedge clk) begin
        s_wb_ack <= 1'b0;
        s_wb_err <= 1'b0;
        if (!rst_n || !s_wb_cyc)
            busy <= 1'b0;   // CYC dropped: the cycle is abandoned
        else if (fire) begin
            if (!mem_inside(f_word)) begin
                `SHM_ERROR(SPACE);
                s_wb_err   <= 1'b1;
                s_wb_dat_o <= {DATA_W{1'b1}};
            end else begin
                s_wb_ack <= 1'b1;
                if (f_we)
                    mem_store(f_word, busy ? q_data : s_wb_dat_i, busy ? q_sel : s_wb_sel);
                else
                    s_wb_dat_o <= mem_load(f_word);
            end
            busy <= 1'b0;
        end else if (take) begin
            busy   <= 1'b1;
            q_we   <= s_wb_we;
            q_word <= in_word;
            q_data <= s_wb_dat_i;
            q_sel  <= s_wb_sel;
            count  <= latency - 16'd1;
        end else if (busy)
            count <= count - 16'd1;
    end
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
