// Word copy engine: moves up to 255 32-bit words from one source to one sink, pipelined through a
// 4-entry FIFO so that a source with one cycle of read latency and a sink that always grants sustain one
// word per cycle.
//
// Sources: host memory (the request's device-readable descriptor stream), media, the write buffer RAM,
// or the device ID string. Sinks: host memory (the device-writable stream), media, the write buffer RAM.
// No copy uses the same port on both sides, so no arbitration is needed here.
// Host addresses come from the engine's stream pointers (`hrs_addr`/`hws_addr`), which advance on
// `hrs_adv`/`hws_adv`; media and RAM addresses are linear from `src_lin`/`dst_lin`.
// `abort` stops issuing, drains the reads in flight and drops their data.
`default_nettype none

module vblk_copy #(
    parameter [159:0] ID  = "mmiotk-vblk-rtl-0001",
    parameter         CAW = 10
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
    output wire [31:0]    h_wdata,
    input  wire           h_gnt,
    input  wire           h_rvalid,
    input  wire [31:0]    h_rdata,

    output wire           m_req,
    output wire           m_we,
    output wire [47:0]    m_addr,
    output wire [31:0]    m_wdata,
    input  wire           m_gnt,
    input  wire           m_rvalid,
    input  wire [31:0]    m_rdata,

    output wire           c_re,
    output wire [CAW-1:0] c_raddr,
    input  wire           c_rvalid,
    input  wire [31:0]    c_rdata,
    output wire           c_we,
    output wire [CAW-1:0] c_waddr,
    output wire [31:0]    c_wdata
);
    localparam [1:0] P_HOST = 2'd0, P_MEDIA = 2'd1, P_CACHE = 2'd2, P_ID = 2'd3;

    reg  [1:0]  src, dst;
    reg  [7:0]  n, issued, written;
    reg  [47:0] slin, dlin;
    reg         aborting;
    reg  [2:0]  outst;
    reg  [31:0] fifo [0:3];
    reg  [1:0]  wp, rp;
    reg  [2:0]  cnt;
    reg         id_rv;
    reg  [31:0] id_data;

    wire want_issue = busy && !aborting && !abort && (issued != n) && (({1'b0, cnt} + {1'b0, outst}) < 4'd4);
    wire src_ready  = (src == P_HOST) ? h_gnt : (src == P_MEDIA) ? m_gnt : 1'b1;
    wire issue      = want_issue && src_ready;
    wire ret        = busy && ((src == P_HOST) ? h_rvalid : (src == P_MEDIA) ? m_rvalid
                                : (src == P_CACHE) ? c_rvalid : id_rv);
    wire [31:0] ret_data = (src == P_HOST) ? h_rdata : (src == P_MEDIA) ? m_rdata
                         : (src == P_CACHE) ? c_rdata : id_data;
    wire want_pop   = busy && !aborting && !abort && (cnt != 3'd0);
    wire dst_ready  = (dst == P_HOST) ? h_gnt : (dst == P_MEDIA) ? m_gnt : 1'b1;
    wire pop        = want_pop && dst_ready;
    wire [31:0] head = fifo[rp];

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

    // Byte i of the ID string is its i-th character; a Verilog string holds the first one on top.
    function [159:0] le_bytes(input [159:0] str);
        integer i;
        begin
            for (i = 0; i < 20; i = i + 1)
                le_bytes[8*i +: 8] = str[159 - 8*i -: 8];
        end
    endfunction
    localparam [159:0] ID_LE = le_bytes(ID);

    function [31:0] id_word(input [2:0] k);
        begin
            case (k)
            3'd0: id_word = ID_LE[31:0];
            3'd1: id_word = ID_LE[63:32];
            3'd2: id_word = ID_LE[95:64];
            3'd3: id_word = ID_LE[127:96];
            3'd4: id_word = ID_LE[159:128];
            default: id_word = 32'd0;
            endcase
        end
    endfunction

    always @(posedge clk) begin
        done  <= 1'b0;
        id_rv <= issue && (src == P_ID);
        if (issue && src == P_ID)
            id_data <= id_word(issued[2:0]);
        if (!rst_n) begin
            busy     <= 1'b0;
            aborting <= 1'b0;
            outst    <= 3'd0;
            cnt      <= 3'd0;
            wp       <= 2'd0;
            rp       <= 2'd0;
            issued   <= 8'd0;
            written  <= 8'd0;
            id_rv    <= 1'b0;
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
