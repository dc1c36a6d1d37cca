// hwsim_avmm_master: an Avalon-MM host driven by one command per whole transfer (simulation only).
//
// The command port (hwsim_cmd_port.vh) is this module's own registers. read or write rises at once and
// stays until the edge at which waitrequest is low. With READDATAVALID=1 a read then waits for the edge
// with readdatavalid, with WRITERESPONSE=1 a write for the edge with writeresponsevalid (else they
// complete when accepted; a write then cannot report an error). readdata and response are captured at
// the completing edge (rsp_resp = response: 0 OKAY, 2 SLVERR, 3 DECODEERROR) and rsp_tgl flips 1 ps
// later. WORD_ADDRESS=1 presents word addresses (byte address / bytes per word), as an agent without
// an interconnect in front of it sees them; 0 presents byte addresses.
`timescale 1ns/1ps
`default_nettype none
// simulation only: initialised registers, blocking assignments after a delay, unused upper bits
/* verilator lint_off PROCASSINIT */
/* verilator lint_off BLKSEQ */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_avmm_master #(
    parameter ADDR_W        = 32,
    parameter DATA_W        = 32,    // 32 or 64
    parameter READDATAVALID = 1,
    parameter WRITERESPONSE = 1,
    parameter WORD_ADDRESS  = 1
) (
    input  wire                  clk,
    input  wire                  rst_n,

    output wire [ADDR_W-1:0]     m_avmm_address,
    output wire                  m_avmm_read,
    output wire                  m_avmm_write,
    output wire [DATA_W-1:0]     m_avmm_writedata,
    output wire [DATA_W/8-1:0]   m_avmm_byteenable,
    input  wire [DATA_W-1:0]     m_avmm_readdata,
    input  wire                  m_avmm_waitrequest,
    input  wire                  m_avmm_readdatavalid,
    input  wire [1:0]            m_avmm_response,
    input  wire                  m_avmm_writeresponsevalid
);
`include "hwsim_cmd_port.vh"
    localparam SHIFT = (WORD_ADDRESS != 0) ? ((DATA_W == 64) ? 3 : 2) : 0;
    wire [63:0] rdata64 = m_avmm_readdata;  // zero-extended
    wire [63:0] word64  = addr64 >> SHIFT;
    reg  seen = 1'b0, waiting = 1'b0, done_tgl = 1'b0, wr = 1'b0;
    wire pending  = rst_n && (cmd_tgl != seen);
    wire accepted = pending && !m_avmm_waitrequest;
    wire needs_answer = is_write ? (WRITERESPONSE != 0) : (READDATAVALID != 0);
    wire answer   = wr ? m_avmm_writeresponsevalid : m_avmm_readdatavalid;
    wire answer_now = is_write ? m_avmm_writeresponsevalid : m_avmm_readdatavalid;
    wire complete = (waiting && answer) || (accepted && (!needs_answer || answer_now));

    assign m_avmm_address    = word64[ADDR_W-1:0];
    assign m_avmm_read       = pending && !is_write;
    assign m_avmm_write      = pending && is_write;
    assign m_avmm_writedata  = wdata64[DATA_W-1:0];
    assign m_avmm_byteenable = is_write ? cmd_wstrb : {DATA_W/8{1'b1}};

    always @(posedge clk) begin
        if (!rst_n) begin
            seen    <= cmd_tgl;
            waiting <= 1'b0;
        end else begin
            if (accepted)
                seen <= cmd_tgl;
            if (complete) begin
                waiting      <= 1'b0;
                rsp_rdata    <= rdata64[31:0];
                rsp_rdata_hi <= rdata64[63:32];
                rsp_resp     <= ((waiting ? wr : is_write) ? (WRITERESPONSE != 0) : (READDATAVALID != 0))
                                ? m_avmm_response : 2'd0;
                done_tgl     <= ~done_tgl;
            end else if (accepted) begin
                waiting <= 1'b1;
                wr      <= is_write;
            end
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
