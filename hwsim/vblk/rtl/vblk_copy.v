// Word copy engine: moves up to 255 DW-bit words from one source to one sink, pipelined through a
// 4-entry FIFO so that a source with one cycle of read latency and a sink that always grants sustain one
// word per cycle.
//
// Sources: host memory (the request's device-readable descriptor stream), media, the write buffer RAM.
// Sinks: host memory (the device-writable stream), media, the write buffer RAM.
// No copy uses the same port on both sides, so no arbitration is needed here.
// Host addresses come from the engine's stream pointers (`hrs_addr`/`hws_addr`), which advance on
// `hrs_adv`/`hws_adv`; media and RAM addresses are linear from `src_lin`/`dst_lin`.
// `abort` stops issuing, drains the reads in flight and drops their data.
`default_nettype none

module vblk_copy #(
    parameter DW  = 32,
    parameter CAW = 10
) (
    input  wire           clk,
    input  wire           rst_n,
    input  wire           abort,

    input  wire           start,
    input  wire [1:0]     src_sel,
    input  wire [1:0]     dst_sel,
    input  wire [7:0]     nwords,
    input  wire [47:0]    src_lin,
    input  wire [47:0]    dst_lin,
    output reg            busy,
    output reg            done,

    input  wire [63:0]    hrs_addr,
    output wire           hrs_adv,
    input  wire [63:0]    hws_addr,
    output wire           hws_adv,

    output wire           h_req,
    output wire           h_we,
    output wire [63:0]    h_addr,
    output wire [DW-1:0]  h_wdata,
    input  wire           h_gnt,
    input  wire           h_rvalid,
    input  wire [DW-1:0]  h_rdata,

    output wire           m_req,
    output wire           m_we,
    output wire [47:0]    m_addr,
    output wire [DW-1:0]  m_wdata,
    input  wire           m_gnt,
    input  wire           m_rvalid,
    input  wire [DW-1:0]  m_rdata,

    output wire           c_re,
    output wire [CAW-1:0] c_raddr,
    input  wire           c_rvalid,
    input  wire [DW-1:0]  c_rdata,
    output wire           c_we,
    output wire [CAW-1:0] c_waddr,
    output wire [DW-1:0]  c_wdata
);
    localparam [1:0] P_HOST = 2'd0, P_MEDIA = 2'd1, P_CACHE = 2'd2;

    reg  [1:0]  src, dst;
    reg  [7:0]  n, issued, written;
    reg  [47:0] slin, dlin;
    reg         aborting;
    reg  [2:0]  outst;
    reg  [DW-1:0] fifo [0:3];
    reg  [1:0]  wp, rp;
    reg  [2:0]  cnt;

    wire want_issue = busy && !aborting && !abort && (issued != n) && (({1'b0, cnt} + {1'b0, outst}) < 4'd4);
    wire src_ready  = (src == P_HOST) ? h_gnt : (src == P_MEDIA) ? m_gnt : 1'b1;
    wire issue      = want_issue && src_ready;
    wire ret        = busy && ((src == P_HOST) ? h_rvalid : (src == P_MEDIA) ? m_rvalid : c_rvalid);
    wire [DW-1:0] ret_data = (src == P_HOST) ? h_rdata : (src == P_MEDIA) ? m_rdata : c_rdata;
    wire want_pop   = busy && !aborting && !abort && (cnt != 3'd0);
    wire dst_ready  = (dst == P_HOST) ? h_gnt : (dst == P_MEDIA) ? m_gnt : 1'b1;
    wire pop        = want_pop && dst_ready;
    wire [DW-1:0] head = fifo[rp];

    assign h_req   = (want_issue && src == P_HOST) || (want_pop && dst == P_HOST);
    assign h_we    = (dst == P_HOST);
    assign h_addr  = (dst == P_HOST) ? hws_addr : hrs_addr;
    assign h_wdata = head;
    assign hrs_adv = issue && (src == P_HOST);
    assign hws_adv = pop && (dst == P_HOST);

    assign m_req   = (want_issue && src == P_MEDIA) || (want_pop && dst == P_MEDIA);
    assign m_we    = (dst == P_MEDIA);
    assign m_addr  = (dst == P_MEDIA) ? dlin + {40'd0, written} : slin + {40'd0, issued};
    assign m_wdata = head;

    assign c_re    = want_issue && (src == P_CACHE);
    assign c_raddr = slin[CAW-1:0] + {{(CAW-8){1'b0}}, issued};
    assign c_we    = pop && (dst == P_CACHE);
    assign c_waddr = dlin[CAW-1:0] + {{(CAW-8){1'b0}}, written};
    assign c_wdata = head;

    always @(posedge clk) begin
        done  <= 1'b0;
        if (!rst_n) begin
            busy     <= 1'b0;
            aborting <= 1'b0;
            outst    <= 3'd0;
            cnt      <= 3'd0;
            wp       <= 2'd0;
            rp       <= 2'd0;
            issued   <= 8'd0;
            written  <= 8'd0;
        end else if (!busy) begin
            if (start) begin
                busy     <= 1'b1;
                aborting <= 1'b0;
                src      <= src_sel;
                dst      <= dst_sel;
                n        <= nwords;
                slin     <= src_lin;
                dlin     <= dst_lin;
                issued   <= 8'd0;
                written  <= 8'd0;
                outst    <= 3'd0;
                cnt      <= 3'd0;
                wp       <= 2'd0;
                rp       <= 2'd0;
            end
        end else begin
            if (abort)
                aborting <= 1'b1;
            if (issue)
                issued <= issued + 8'd1;
            outst <= outst + {2'd0, issue} - {2'd0, ret};
            if (ret && !aborting && !abort) begin
                fifo[wp] <= ret_data;
                wp <= wp + 2'd1;
            end
            if (pop) begin
                rp <= rp + 2'd1;
                written <= written + 8'd1;
            end
            cnt <= cnt + {2'd0, ret && !aborting && !abort} - {2'd0, pop};
            if (aborting || abort) begin
                if (outst == 3'd0 || (outst == 3'd1 && ret)) begin
                    busy     <= 1'b0;
                    aborting <= 1'b0;
                end
            end else if (written == n) begin
                busy <= 1'b0;
                done <= 1'b1;
            end
        end
    end
endmodule

`default_nettype wire
