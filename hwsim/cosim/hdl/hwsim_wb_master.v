// hwsim_wb_master: a Wishbone B4 master driven by one command per whole cycle (simulation only).
//
// The command port (hwsim_cmd_port.vh) is this module's own registers; addresses are byte addresses.
// PIPELINED=0 (classic): CYC and STB rise at once and stay until the edge at which ACK, ERR or RTY is
// high. PIPELINED=1: STB stays until the edge at which STALL is low, CYC until the answer. The data and
// the answer are captured at that edge (rsp_resp: 0 ACK, 1 ERR, 2 RTY) and rsp_tgl flips 1 ps later,
// however many wait states the slave inserted.
`timescale 1ns/1ps
`default_nettype none
// simulation only: initialised registers, blocking assignments after a delay, unused upper bits
/* verilator lint_off PROCASSINIT */
/* verilator lint_off BLKSEQ */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_wb_master #(
    parameter ADDR_W    = 32,
    parameter DATA_W    = 32,        // 32 or 64
    parameter PIPELINED = 0
) (
    input  wire                  clk,
    input  wire                  rst_n,

    output wire                  m_wb_cyc,
    output wire                  m_wb_stb,
    output wire                  m_wb_we,
    output wire [ADDR_W-1:0]     m_wb_adr,
    output wire [DATA_W-1:0]     m_wb_dat_o,
    output wire [DATA_W/8-1:0]   m_wb_sel,
    input  wire [DATA_W-1:0]     m_wb_dat_i,
    input  wire                  m_wb_ack,
    input  wire                  m_wb_err,
    input  wire                  m_wb_rty,
    input  wire                  m_wb_stall
);
`include "hwsim_cmd_port.vh"
    wire [63:0] rdata64 = m_wb_dat_i;  // zero-extended
    reg  seen = 1'b0, waiting = 1'b0, done_tgl = 1'b0, wr = 1'b0;
    wire pending  = rst_n && (cmd_tgl != seen);
    wire answer   = m_wb_ack || m_wb_err || m_wb_rty;
    wire accepted = pending && (PIPELINED != 0 ? !m_wb_stall : 1'b1);
    wire complete = answer && (waiting || accepted);

    assign m_wb_cyc   = pending || waiting;
    assign m_wb_stb   = pending;
    assign m_wb_we    = waiting ? wr : is_write;
    assign m_wb_adr   = addr64[ADDR_W-1:0];
    assign m_wb_dat_o = wdata64[DATA_W-1:0];
    assign m_wb_sel   = is_write ? cmd_wstrb : {DATA_W/8{1'b1}};

    always @(posedge clk) begin
        if (!rst_n) begin
            seen    <= cmd_tgl;
            waiting <= 1'b0;
        end else begin
            if (complete) begin
                waiting      <= 1'b0;
                rsp_rdata    <= rdata64[31:0];
                rsp_rdata_hi <= rdata64[63:32];
                rsp_resp     <= m_wb_err ? 2'd1 : (m_wb_rty ? 2'd2 : 2'd0);
                done_tgl     <= ~done_tgl;
            end else if (accepted && PIPELINED != 0) begin
                waiting <= 1'b1;
                wr      <= is_write;
            end
            if (accepted && (PIPELINED != 0 || complete))
                seen <= cmd_tgl;
        end
    end

    // rsp_tgl follows done_tgl 1 ps after the edge that completed the transaction, when every register
    // of that edge has settled (a separate process: Verilator wakes no waiter on a delayed NBA)
    /* verilator lint_off SYNCASYNCNET */
    always @(done_tgl) begin
        #0.001;
        rsp_tgl = done_tgl;
    end
    /* verilator lint_on SYNCASYNCNET */
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on BLKSEQ */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
