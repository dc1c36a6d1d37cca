// hwsim_axil_master: an AXI4-Lite master driven by one command per whole transaction (simulation only).
//
// The command port (hwsim_cmd_port.vh) is this module's own registers, written from outside. The
// command is presented at once, held until the slave takes it, and rsp_tgl flips 1 ps after the first clock edge after which the slave's
// response is valid (however many cycles that takes); rsp_rdata and rsp_resp then hold the response
// (AXI encoding: 0 OKAY, 1 EXOKAY, 2 SLVERR, 3 DECERR) until the next one. RREADY and BREADY stay
// high, so the response is consumed at the next edge, where the slave may already take the next
// command: a slave that answers in the cycle after it accepts runs one transaction per clock.
// `enable` low keeps new commands back (a bench that hands the slave port to another master);
// `busy` says a command is pending or its response not yet consumed.
`timescale 1ns/1ps
`default_nettype none
// simulation only: initialised registers, blocking assignments 1 ps after the edge, unused upper bits
/* verilator lint_off PROCASSINIT */
/* verilator lint_off BLKSEQ */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */

module hwsim_axil_master #(
    parameter ADDR_W = 32,
    parameter DATA_W = 32            // 32 or 64
) (
    input  wire                  clk,
    input  wire                  rst_n,
    input  wire                  enable,
    output wire                  busy,

    output wire [ADDR_W-1:0]     m_axil_awaddr,
    output wire [2:0]            m_axil_awprot,
    output wire                  m_axil_awvalid,
    input  wire                  m_axil_awready,
    output wire [DATA_W-1:0]     m_axil_wdata,
    output wire [DATA_W/8-1:0]   m_axil_wstrb,
    output wire                  m_axil_wvalid,
    input  wire                  m_axil_wready,
    input  wire [1:0]            m_axil_bresp,
    input  wire                  m_axil_bvalid,
    output wire                  m_axil_bready,
    output wire [ADDR_W-1:0]     m_axil_araddr,
    output wire [2:0]            m_axil_arprot,
    output wire                  m_axil_arvalid,
    input  wire                  m_axil_arready,
    input  wire [DATA_W-1:0]     m_axil_rdata,
    input  wire [1:0]            m_axil_rresp,
    input  wire                  m_axil_rvalid,
    output wire                  m_axil_rready
);
`include "hwsim_cmd_port.vh"
    wire [63:0]         rdata64 = m_axil_rdata;  // zero-extended

    reg  seen = 1'b0;      // cmd_tgl of the last command taken
    reg  aw_done = 1'b0, w_done = 1'b0;
    reg  waiting = 1'b0;   // a taken command awaits its response
    reg  waiting_wr = 1'b0;

    wire pending  = rst_n && enable && (cmd_tgl != seen);
    wire aw_now   = aw_done || (m_axil_awvalid && m_axil_awready);
    wire w_now    = w_done || (m_axil_wvalid && m_axil_wready);
    wire taken    = pending && (is_write ? (aw_now && w_now) : m_axil_arready);
    wire consumed = waiting && (waiting_wr ? m_axil_bvalid : m_axil_rvalid);

    assign busy           = pending || waiting;
    assign m_axil_awaddr  = addr64[ADDR_W-1:0];
    assign m_axil_araddr  = addr64[ADDR_W-1:0];
    assign m_axil_awprot  = 3'd0;
    assign m_axil_arprot  = 3'd0;
    assign m_axil_awvalid = pending && is_write && !aw_done;
    assign m_axil_wvalid  = pending && is_write && !w_done;
    assign m_axil_arvalid = pending && !is_write;
    assign m_axil_wdata   = wdata64[DATA_W-1:0];
    assign m_axil_wstrb   = cmd_wstrb;
    assign m_axil_bready  = 1'b1;
    assign m_axil_rready  = 1'b1;

    always @(posedge clk) begin
        if (!rst_n) begin
            seen    <= cmd_tgl;
            aw_done <= 1'b0;
            w_done  <= 1'b0;
            waiting <= 1'b0;
        end else begin
            if (taken) begin
                seen       <= cmd_tgl;
                aw_done    <= 1'b0;
                w_done     <= 1'b0;
                waiting    <= 1'b1;
                waiting_wr <= is_write;
            end else begin
                if (pending) begin
                    aw_done <= aw_now;
                    w_done  <= w_now;
                end
                if (consumed)
                    waiting <= 1'b0;
            end
        end
    end

    // 1 ps after each edge, when every register of that edge has settled: a valid response to the
    // waiting command is reported (it stays valid until the next edge consumes it).
    /* verilator lint_off SYNCASYNCNET */
    // Only while a command is pending or answered (sampled before this edge's NBAs): an idle master
    // costs the simulator no extra time slot or process wake-up per clock. The test is on the registers
    // themselves, not on the `pending` net: a Verilator --binary bench (tb_bench) whose initial block
    // flips cmd_tgl never saw `pending` rise here, and hung in its first transaction.
    always @(posedge clk) if ((cmd_tgl != seen) || waiting) begin
        #0.001;
        if (rst_n && waiting && (waiting_wr ? m_axil_bvalid : m_axil_rvalid)) begin
            rsp_rdata    = rdata64[31:0];
            rsp_rdata_hi = rdata64[63:32];
            rsp_resp  = waiting_wr ? m_axil_bresp : m_axil_rresp;
            rsp_tgl   = ~rsp_tgl;
        end
    end
    /* verilator lint_on SYNCASYNCNET */
endmodule
/* verilator lint_on WIDTHTRUNC */
/* verilator lint_on WIDTHEXPAND */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on BLKSEQ */
/* verilator lint_on PROCASSINIT */

`default_nettype wire
