// hwsim_apb_master: an APB4 (or APB3) master driven by one command per whole transfer (simulation only).
//
// The command port (hwsim_cmd_port.vh) is this module's own registers. A command starts the SETUP phase
// at once (PSEL, PENABLE low), ACCESS follows at the next edge and lasts until the edge at which
// PREADY is high; PRDATA and PSLVERR are captured at that edge (rsp_resp = PSLVERR) and rsp_tgl flips
// 1 ps later, however many wait states the slave inserted. Back-to-back transfers go straight from
// ACCESS to the next SETUP: two clocks per transfer, the APB minimum. An APB3 slave leaves PSTRB and
// PPROT unconnected (and takes whole-word writes only).
`timescale 1ns/1ps
`default_nettype none
// simulation only: initialised registers, blocking assignments after a delay, unused upper bits
/* verilator lint_off PROCASSINIT */
/* verilator lint_off BLKSEQ */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_apb_master #(
    parameter ADDR_W = 32,
    parameter DATA_W = 32            // 32 or 64
) (
    input  wire                  clk,
    input  wire                  rst_n,

    output wire                  m_apb_psel,
    output wire                  m_apb_penable,
    output wire [ADDR_W-1:0]     m_apb_paddr,
    output wire                  m_apb_pwrite,
    output wire [DATA_W-1:0]     m_apb_pwdata,
    output wire [DATA_W/8-1:0]   m_apb_pstrb,
    output wire [2:0]            m_apb_pprot,
    input  wire [DATA_W-1:0]     m_apb_prdata,
    input  wire                  m_apb_pready,
    input  wire                  m_apb_pslverr
);
`include "hwsim_cmd_port.vh"
    wire [63:0] rdata64 = m_apb_prdata;  // zero-extended
    reg  seen = 1'b0, access = 1'b0, done_tgl = 1'b0;
    reg  wr = 1'b0;
    wire pending = rst_n && (cmd_tgl != seen);

    assign m_apb_psel    = pending || access;
    assign m_apb_penable = access;
    assign m_apb_paddr   = addr64[ADDR_W-1:0];
    assign m_apb_pwrite  = access ? wr : is_write;
    assign m_apb_pwdata  = wdata64[DATA_W-1:0];
    assign m_apb_pstrb   = cmd_wstrb;
    assign m_apb_pprot   = 3'd0;

    always @(posedge clk) begin
        if (!rst_n) begin
            seen   <= cmd_tgl;
            access <= 1'b0;
        end else if (access) begin
            if (m_apb_pready) begin
                access       <= 1'b0;
                rsp_rdata    <= rdata64[31:0];
                rsp_rdata_hi <= rdata64[63:32];
                rsp_resp     <= {1'b0, m_apb_pslverr};
                done_tgl     <= ~done_tgl;
            end
        end else if (pending) begin
            seen   <= cmd_tgl;
            access <= 1'b1;
            wr     <= is_write;
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
