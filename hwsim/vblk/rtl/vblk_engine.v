// virtio-blk request engine: consumes the split virtqueue, moves data between host memory, an on-chip
// write buffer and the media, and completes requests into the used ring.
//
// Per request: read avail.idx and the ring entry, walk the descriptor chain once (validating it and
// recording up to 2**DTAB_AW descriptors), read the 16-byte header from the device-readable stream,
// transfer 512-byte sectors, write the status byte (last byte of the device-writable stream), the used
// element and used.idx, then read avail.flags and raise the used-buffer event unless NO_INTERRUPT.
//
// Malformed input never hangs the engine. The policy is the behavioural model's (and QEMU's), see
// hwsim/models/virtio_blk.py:
//   * a chain that breaks the virtqueue rules (bad queue setup, avail.idx more than a queue ahead, an
//     index >= its table's size, a chain longer than its table, i.e. a NEXT loop, a zero-length
//     descriptor, a buffer outside the host window, readable after writable, a bad or nested INDIRECT,
//     a header shorter than 16 bytes, no writable status byte) sets DEVICE_NEEDS_RESET via
//     `fatal_event`, and the engine halts until the driver resets the device;
//   * a well-formed chain the request cannot use (this engine's alignment contract, more descriptors
//     than it records, data not whole blocks, out of range, OUT on a read-only medium) completes with
//     IOERR, and a used length of 1 (only the status byte is written).
//
// INDIRECT (when negotiated) may be the last descriptor of a direct chain (virtio 1.2, 2.7.5.3.2); the
// walk then continues at entry 0 of the indirect table. QueueReady=0 (or FAILED) stops the engine at
// once, mid-request: no ring or buffer access after the register write, the request is dropped.
//
// Alignment contract: descriptor buffers start 4-byte aligned and are a multiple of 4 long, except the
// last (device-writable) one, which is either 1 byte (status only, any address) or 4n+1 bytes.
//
// Write buffer: NLINES lines of one sector. Writeback mode completes an OUT once its data is in a line;
// lines are written to media on FLUSH or on eviction. Writethrough writes the media before completing
// and drops any buffered copy of the sector. Reads are served from the buffer when it holds the sector.
`default_nettype none

module vblk_engine #(
    parameter [63:0]  HOST_BASE     = 64'h0000_0000_8000_0000,
    parameter [63:0]  HOST_SIZE     = 64'h0000_0000_0100_0000,
    parameter [15:0]  QUEUE_NUM_MAX = 16'd64,
    parameter         F_FLUSH       = 1,
    parameter [31:0]  BLK_SIZE      = 32'd512,
    parameter         DTAB_AW       = 5,
    parameter         LINES_AW      = 3,
    parameter [159:0] ID            = "mmiotk-vblk-rtl-0001"
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        dev_reset,
    input  wire        run,
    input  wire        notify,
    input  wire [15:0] q_num,
    input  wire [63:0] q_desc,
    input  wire [63:0] q_avail,
    input  wire [63:0] q_used,
    input  wire        writeback,
    input  wire        ro,
    input  wire        indirect,
    input  wire        q_ready,
    input  wire [63:0] capacity,
    input  wire [63:0] media_base,   // sector of the backing store that is the device's sector 0
    output reg         used_event,
    output reg         fatal_event,

    output wire        h_req,
    output wire        h_we,
    output wire [63:0] h_addr,
    output wire [31:0] h_wdata,
    output wire [3:0]  h_wstrb,
    input  wire        h_gnt,
    input  wire        h_rvalid,
    input  wire [31:0] h_rdata,

    output wire        m_req,
    output wire [1:0]  m_cmd,      // 0 read word, 1 write word, 2 sync (response on m_rvalid)
    output wire [47:0] m_addr,     // word address: sector * 128 + word
    output wire [31:0] m_wdata,
    input  wire        m_gnt,
    input  wire        m_rvalid,
    input  wire [31:0] m_rdata
);
    localparam DT  = 1 << DTAB_AW;
    localparam NL  = 1 << LINES_AW;
    localparam CAW = LINES_AW + 7;

    localparam [5:0] S_IDLE = 6'd0, S_AVF = 6'd1, S_AVI = 6'd2, S_RING = 6'd3, S_HEAD = 6'd4,
                     S_DESC = 6'd5, S_DESC_R = 6'd6, S_DCHK = 6'd7, S_PARSE = 6'd8, S_HDR = 6'd9,
                     S_HDR_R = 6'd10, S_DISPATCH = 6'd11, S_SEC = 6'd12, S_EVICT_W = 6'd13,
                     S_CWAIT = 6'd14, S_FLUSH = 6'd15, S_FLUSH_W = 6'd16, S_SYNC = 6'd17,
                     S_SYNC_W = 6'd18, S_ID_W = 6'd19, S_STATUS = 6'd20, S_USED0 = 6'd21,
                     S_USED1 = 6'd22, S_USED2 = 6'd23, S_DONE = 6'd24, S_FATAL = 6'd25,
                     S_HALT = 6'd26, S_DRAIN = 6'd27, S_HACC = 6'd28, S_HRDW = 6'd29;

    localparam [31:0] T_IN = 32'd0, T_OUT = 32'd1, T_FLUSH = 32'd4, T_GET_ID = 32'd8;
    localparam [7:0]  BLK_OK = 8'd0, BLK_IOERR = 8'd1, BLK_UNSUPP = 8'd2;
    localparam [1:0]  P_HOST = 2'd0, P_MEDIA = 2'd1, P_CACHE = 2'd2, P_ID = 2'd3;

    reg  [5:0]  st, ret_st;
    reg         notify_pend;

    // single host accesses made by the engine itself
    reg  [63:0] acc_addr;
    reg         acc_hi, acc_we;
    reg  [31:0] acc_wdata, acc_rdata;
    reg  [3:0]  acc_wstrb;
    reg         rd_pend, sync_pend;
    wire [15:0] acc_half = acc_hi ? acc_rdata[31:16] : acc_rdata[15:0];

    // ring state
    reg  [15:0] last_avail, used_idx, head, cur;
    reg  [32:0] count;
    reg  [63:0] tbl;          // the descriptor table being walked: the queue's or an indirect one
    reg  [31:0] tbl_n;        // its entries
    reg         in_ind;
    reg  [1:0]  dw;
    reg  [63:0] d_addr;
    reg  [31:0] d_len;
    reg  [15:0] d_flags, d_next;

    // the request's descriptor chain
    reg  [63:0] dt_addr [0:DT-1];
    reg  [31:0] dt_len  [0:DT-1];
    reg  [DTAB_AW:0] n_ent, n_rd;
    reg         seen_wr, bad;
    reg  [39:0] rd_total, wr_total;
    reg  [63:0] last_addr;
    reg  [31:0] last_len;
    reg         last_wr, last_win;
    reg  [DTAB_AW:0] rs_i, ws_i;
    reg  [31:0] rs_off, ws_off;

    // the request
    reg  [1:0]  hw;
    reg  [31:0] h_type;
    reg  [63:0] h_sector;
    reg  [63:0] status_addr;
    reg  [7:0]  status_code;
    reg  [31:0] used_len;
    reg         is_out, filling, req_wb;
    reg  [63:0] sec_cur;
    reg  [30:0] sec_left;

    // write buffer bookkeeping
    reg  [NL-1:0] c_valid, c_dirty;
    reg  [40:0]   c_tag [0:NL-1];
    reg  [LINES_AW-1:0] rr, line;

    // copy engine control
    reg         cp_start;
    reg  [1:0]  cp_src, cp_dst;
    reg  [7:0]  cp_n;
    reg  [47:0] cp_slin, cp_dlin;
    wire        cp_busy, cp_done;
    wire        cp_h_req, cp_h_we, cp_m_req, cp_m_we;
    wire [63:0] cp_h_addr;
    wire [31:0] cp_h_wdata, cp_m_wdata;
    wire [47:0] cp_m_addr;
    wire        cp_hrs_adv, cp_hws_adv;
    wire        c_re, c_we, c_rvalid;
    wire [CAW-1:0] c_raddr, c_waddr;
    wire [31:0] c_rdata, c_wdata;

    // ---- address checks --------------------------------------------------------------------------
    function in_win(input [63:0] a, input [63:0] len);
        begin
            in_win = (a >= HOST_BASE) && ({1'b0, a} + {1'b0, len} <= {1'b0, HOST_BASE} + {1'b0, HOST_SIZE});
        end
    endfunction

    wire [15:0] qmask  = q_num - 16'd1;
    wire        num_ok = (q_num != 16'd0) && (q_num <= QUEUE_NUM_MAX) && ((q_num & qmask) == 16'd0);
    wire        q_ok   = num_ok && (q_desc[3:0] == 4'd0) && !q_avail[0] && (q_used[1:0] == 2'd0)
                      && in_win(q_desc, {44'd0, q_num, 4'd0})
                      && in_win(q_avail, {47'd0, q_num, 1'b0} + 64'd6)
                      && in_win(q_used, {45'd0, q_num, 3'd0} + 64'd6);

    wire [63:0] rs_addr = dt_addr[rs_i[DTAB_AW-1:0]] + {32'd0, rs_off};
    wire [63:0] ws_addr = dt_addr[ws_i[DTAB_AW-1:0]] + {32'd0, ws_off};
    wire        eng_rs_adv = (st == S_HDR_R);  // the engine consumed one header word
    wire        rs_step = cp_hrs_adv || eng_rs_adv;

    // descriptor checks (S_DCHK)
    wire        d_next_f = d_flags[0];
    wire        d_wr_f   = d_flags[1];
    wire        d_win    = in_win(d_addr, {32'd0, d_len}) && (d_len != 32'd0);
    wire        d_ind_f  = d_flags[2];
    // an INDIRECT descriptor this engine can follow: negotiated, not nested, not with NEXT, a whole
    // number of 4-byte-aligned 16-byte entries inside the window
    wire        d_ind_ok = indirect && !in_ind && !d_next_f && (d_len[3:0] == 4'd0) && d_win
                        && (d_addr[1:0] == 2'd0);
    wire        d_align  = d_next_f ? (d_addr[1:0] == 2'd0 && d_len[1:0] == 2'd0)
                                    : (d_len == 32'd1 || (d_addr[1:0] == 2'd0 && d_len[1:0] == 2'd1));

    // request checks (S_DISPATCH)
    wire [39:0] in_len   = wr_total - 40'd1;
    wire [39:0] out_len  = rd_total - 40'd16;
    wire [39:0] data_len = (h_type == T_OUT) ? out_len : in_len;
    wire [64:0] req_end  = {1'b0, h_sector} + {34'd0, data_len[39:9]};
    wire [31:0] blk_mask = BLK_SIZE - 32'd1;
    wire [31:0] sec_mask = (BLK_SIZE >> 9) - 32'd1;
    // whole logical blocks, starting on a logical block (sector is in 512-byte units)
    wire        range_ok = ((data_len[31:0] & blk_mask) == 32'd0) && ((h_sector[31:0] & sec_mask) == 32'd0)
                        && (data_len[8:0] == 9'd0) && (req_end <= {1'b0, capacity});
    // the backing store's sector of a device sector (the device-side range)
    wire [40:0] med_sec  = sec_cur[40:0] + media_base[40:0];

    // write-buffer lookup
    reg                 hit, has_free, has_dirty;
    reg  [LINES_AW-1:0] hit_idx, free_idx, dirty_idx;
    integer k;
    always @* begin
        hit = 1'b0; hit_idx = {LINES_AW{1'b0}};
        has_free = 1'b0; free_idx = {LINES_AW{1'b0}};
        has_dirty = 1'b0; dirty_idx = {LINES_AW{1'b0}};
        for (k = NL - 1; k >= 0; k = k - 1) begin
            if (c_valid[k] && c_tag[k] == sec_cur[40:0]) begin
                hit = 1'b1; hit_idx = k[LINES_AW-1:0];
            end
            if (!c_valid[k]) begin
                has_free = 1'b1; free_idx = k[LINES_AW-1:0];
            end
            if (c_valid[k] && c_dirty[k]) begin
                has_dirty = 1'b1; dirty_idx = k[LINES_AW-1:0];
            end
        end
    end

    wire [LINES_AW-1:0] alloc_idx = hit ? hit_idx : has_free ? free_idx : rr;

    function [47:0] line_base(input [LINES_AW-1:0] idx);
        begin
            line_base = {{(41 - LINES_AW){1'b0}}, idx, 7'd0};
        end
    endfunction

    // The queue was disabled (QueueReady=0) or the driver gave up (FAILED) while a request was under
    // way: from this cycle on, no access at all.
    wire        stop = !run && (st != S_IDLE) && (st != S_HALT) && (st != S_DRAIN) && (st != S_FATAL);

    // ---- ports: the copy engine owns them while it runs ------------------------------------------
    assign h_req   = cp_busy ? cp_h_req   : (st == S_HACC && !stop);
    assign h_we    = cp_busy ? cp_h_we    : acc_we;
    assign h_addr  = cp_busy ? cp_h_addr  : acc_addr;
    assign h_wdata = cp_busy ? cp_h_wdata : acc_wdata;
    assign h_wstrb = cp_busy ? 4'hf       : acc_wstrb;
    assign m_req   = cp_busy ? cp_m_req   : (st == S_SYNC && !stop);
    assign m_cmd   = cp_busy ? {1'b0, cp_m_we} : 2'd2;
    assign m_addr  = cp_busy ? cp_m_addr  : 48'd0;
    assign m_wdata = cp_m_wdata;

    vblk_copy #(.ID(ID), .CAW(CAW)) u_copy (
        .clk(clk), .rst_n(rst_n), .abort(dev_reset || stop),
        .start(cp_start), .src_sel(cp_src), .dst_sel(cp_dst), .nwords(cp_n),
        .src_lin(cp_slin), .dst_lin(cp_dlin), .busy(cp_busy), .done(cp_done),
        .hrs_addr(rs_addr), .hrs_adv(cp_hrs_adv), .hws_addr(ws_addr), .hws_adv(cp_hws_adv),
        .h_req(cp_h_req), .h_we(cp_h_we), .h_addr(cp_h_addr), .h_wdata(cp_h_wdata),
        .h_gnt(h_gnt), .h_rvalid(h_rvalid), .h_rdata(h_rdata),
        .m_req(cp_m_req), .m_we(cp_m_we), .m_addr(cp_m_addr), .m_wdata(cp_m_wdata),
        .m_gnt(m_gnt), .m_rvalid(m_rvalid), .m_rdata(m_rdata),
        .c_re(c_re), .c_raddr(c_raddr), .c_rvalid(c_rvalid), .c_rdata(c_rdata),
        .c_we(c_we), .c_waddr(c_waddr), .c_wdata(c_wdata));

    vblk_cache #(.AW(CAW)) u_cache (
        .clk(clk), .rst_n(rst_n), .we(c_we), .waddr(c_waddr), .wdata(c_wdata),
        .re(c_re), .raddr(c_raddr), .rdata(c_rdata), .rvalid(c_rvalid));

    // ---- helpers used inside the FSM -------------------------------------------------------------
    // The low address bits select lanes, not words: unused inside these two tasks by design.
    /* verilator lint_off UNUSEDSIGNAL */
    task host_read(input [63:0] addr, input [5:0] back);
        begin
            acc_addr <= {addr[63:2], 2'b00};
            acc_hi   <= addr[1];
            acc_we   <= 1'b0;
            ret_st   <= back;
            st       <= S_HACC;
        end
    endtask

    task host_write(input [63:0] addr, input [31:0] data, input [3:0] strb, input [5:0] back);
        begin
            acc_addr  <= {addr[63:2], 2'b00};
            acc_we    <= 1'b1;
            acc_wdata <= data;
            acc_wstrb <= strb;
            ret_st    <= back;
            st        <= S_HACC;
        end
    endtask
    /* verilator lint_on UNUSEDSIGNAL */

    task copy(input [1:0] src, input [47:0] slin, input [1:0] dst, input [47:0] dlin, input [7:0] n,
              input [5:0] wait_st);
        begin
            cp_start <= 1'b1;
            cp_src   <= src;
            cp_slin  <= slin;
            cp_dst   <= dst;
            cp_dlin  <= dlin;
            cp_n     <= n;
            st       <= wait_st;
        end
    endtask

    task finish(input [7:0] code);
        begin
            status_code <= code;
            st          <= S_STATUS;
        end
    endtask

    // ---- the FSM ---------------------------------------------------------------------------------
    always @(posedge clk) begin
        used_event  <= 1'b0;
        fatal_event <= 1'b0;
        cp_start    <= 1'b0;

        if (!cp_busy && h_rvalid)
            rd_pend <= 1'b0;
        if (st == S_HACC && h_gnt && !acc_we && !cp_busy && !stop)
            rd_pend <= 1'b1;
        if (!cp_busy && m_rvalid)
            sync_pend <= 1'b0;
        if (st == S_SYNC && m_gnt && !cp_busy && !stop)
            sync_pend <= 1'b1;
        if (notify)
            notify_pend <= 1'b1;

        if (rs_step) begin
            if (rs_off + 32'd4 >= dt_len[rs_i[DTAB_AW-1:0]]) begin
                rs_i   <= rs_i + 1'b1;
                rs_off <= 32'd0;
            end else
                rs_off <= rs_off + 32'd4;
        end
        if (cp_hws_adv) begin
            if (ws_off + 32'd4 >= dt_len[ws_i[DTAB_AW-1:0]]) begin
                ws_i   <= ws_i + 1'b1;
                ws_off <= 32'd0;
            end else
                ws_off <= ws_off + 32'd4;
        end

        if (!rst_n) begin
            st          <= S_IDLE;
            notify_pend <= 1'b0;
            rd_pend     <= 1'b0;
            sync_pend   <= 1'b0;
            last_avail  <= 16'd0;
            used_idx    <= 16'd0;
            c_valid     <= {NL{1'b0}};
            c_dirty     <= {NL{1'b0}};
            rr          <= {LINES_AW{1'b0}};
        end else if (dev_reset) begin
            // Virtio reset: forget the ring, keep the write buffer (it is the device's, not the
            // driver's); any line being filled stays invalid.
            st          <= S_DRAIN;
            notify_pend <= 1'b0;
            last_avail  <= 16'd0;
            used_idx    <= 16'd0;
        end else if (stop) begin
            st <= S_DRAIN;
        end else begin
            if (!q_ready) begin
                // a disabled queue starts over at ring index 0 when it is enabled again
                last_avail <= 16'd0;
                used_idx   <= 16'd0;
            end
            case (st)
            S_IDLE:
                if (run && notify_pend)
                    st <= q_ok ? S_AVF : S_FATAL;

            S_AVF:
                if (!run)
                    st <= S_IDLE;
                else begin
                    notify_pend <= notify;  // a notify from now on means "look again"
                    host_read(q_avail + 64'd2, S_RING);
                end

            S_RING:
                if (acc_half == last_avail)
                    st <= S_IDLE;
                else if (acc_half - last_avail > q_num)
                    st <= S_FATAL;
                else
                    host_read(q_avail + 64'd4 + {47'd0, last_avail & qmask, 1'b0}, S_HEAD);

            S_HEAD:
                if (acc_half >= q_num)
                    st <= S_FATAL;
                else begin
                    head     <= acc_half;
                    cur      <= acc_half;
                    count    <= 33'd0;
                    tbl      <= q_desc;
                    tbl_n    <= {16'd0, q_num};
                    in_ind   <= 1'b0;
                    n_ent    <= {(DTAB_AW + 1){1'b0}};
                    n_rd     <= {(DTAB_AW + 1){1'b0}};
                    seen_wr  <= 1'b0;
                    bad      <= 1'b0;
                    rd_total <= 40'd0;
                    wr_total <= 40'd0;
                    dw       <= 2'd0;
                    st       <= S_DESC;
                end

            S_DESC:
                host_read(tbl + {44'd0, cur, 4'd0} + {60'd0, dw, 2'b00}, S_DESC_R);

            S_DESC_R: begin
                case (dw)
                2'd0: d_addr[31:0]  <= acc_rdata;
                2'd1: d_addr[63:32] <= acc_rdata;
                2'd2: d_len         <= acc_rdata;
                default: {d_next, d_flags} <= acc_rdata;
                endcase
                dw <= dw + 2'd1;
                st <= (dw == 2'd3) ? S_DCHK : S_DESC;
            end

            S_DCHK: begin
                count <= count + 33'd1;
                if (count + 33'd1 > {1'b0, tbl_n})
                    st <= S_FATAL;  // longer than its table: a NEXT loop
                else if (d_ind_f) begin
                    if (!d_ind_ok)
                        st <= S_FATAL;
                    else begin
                        // the rest of the chain is the indirect table, from its entry 0
                        tbl    <= d_addr;
                        tbl_n  <= {4'd0, d_len[31:4]};
                        in_ind <= 1'b1;
                        cur    <= 16'd0;
                        count  <= 33'd0;
                        dw     <= 2'd0;
                        st     <= S_DESC;
                    end
                end else if (!d_win || (!d_wr_f && seen_wr))
                    st <= S_FATAL;  // zero length, outside the window, readable after writable
                else begin
                    if (!d_align || n_ent == DT[DTAB_AW:0])
                        bad <= 1'b1;
                    if (d_wr_f) begin
                        seen_wr  <= 1'b1;
                        wr_total <= wr_total + {8'd0, d_len};
                    end else
                        rd_total <= rd_total + {8'd0, d_len};
                    if (n_ent != DT[DTAB_AW:0]) begin
                        dt_addr[n_ent[DTAB_AW-1:0]] <= d_addr;
                        dt_len[n_ent[DTAB_AW-1:0]]  <= d_len;
                        n_ent <= n_ent + 1'b1;
                        if (!d_wr_f)
                            n_rd <= n_rd + 1'b1;
                    end
                    if (d_next_f) begin
                        if ({16'd0, d_next} >= tbl_n)
                            st <= S_FATAL;
                        else begin
                            cur <= d_next;
                            dw  <= 2'd0;
                            st  <= S_DESC;
                        end
                    end else begin
                        last_addr <= d_addr;
                        last_len  <= d_len;
                        last_wr   <= d_wr_f;
                        last_win  <= d_win;
                        st        <= S_PARSE;
                    end
                end
            end

            S_PARSE:
                if (!last_wr || !last_win || rd_total < 40'd16)
                    st <= S_FATAL;  // nowhere to put a status byte, or no whole header
                else begin
                    status_addr <= last_addr + {32'd0, last_len} - 64'd1;
                    rs_i     <= {(DTAB_AW + 1){1'b0}};
                    rs_off   <= 32'd0;
                    ws_i     <= n_rd;
                    ws_off   <= 32'd0;
                    used_len <= 32'd1;
                    hw       <= 2'd0;
                    if (bad)
                        finish(BLK_IOERR);
                    else
                        st <= S_HDR;
                end

            S_HDR:
                host_read(rs_addr, S_HDR_R);

            S_HDR_R: begin
                case (hw)
                2'd0: h_type <= acc_rdata;
                2'd2: h_sector[31:0] <= acc_rdata;
                2'd3: h_sector[63:32] <= acc_rdata;
                default: ;
                endcase
                hw <= hw + 2'd1;
                st <= (hw == 2'd3) ? S_DISPATCH : S_HDR;
            end

            S_DISPATCH: begin
                sec_cur  <= h_sector;
                sec_left <= data_len[39:9];
                req_wb   <= writeback;
                case (h_type)
                T_IN:
                    if (!range_ok)
                        finish(BLK_IOERR);
                    else begin
                        is_out      <= 1'b0;
                        used_len    <= wr_total[31:0];
                        status_code <= BLK_OK;
                        st          <= S_SEC;
                    end
                T_OUT:
                    if (ro || !range_ok)
                        finish(BLK_IOERR);
                    else begin
                        is_out      <= 1'b1;
                        status_code <= BLK_OK;
                        st          <= S_SEC;
                    end
                T_FLUSH:
                    if (F_FLUSH != 0) begin
                        status_code <= BLK_OK;
                        st          <= S_FLUSH;
                    end
                    else
                        finish(BLK_UNSUPP);
                T_GET_ID: begin
                    status_code <= BLK_OK;
                    if (in_len >= 40'd20) begin
                        used_len <= 32'd21;
                        copy(P_ID, 48'd0, P_HOST, 48'd0, 8'd5, S_ID_W);
                    end else begin
                        used_len <= {27'd0, in_len[4:2], 2'b01};
                        copy(P_ID, 48'd0, P_HOST, 48'd0, {5'd0, in_len[4:2]}, S_ID_W);
                    end
                end
                default:
                    finish(BLK_UNSUPP);
                endcase
            end

            S_SEC:
                if (sec_left == 31'd0)
                    // writethrough: the data is durable before the OUT completes (virtio 1.2, 5.2.6)
                    st <= (is_out && !req_wb) ? S_SYNC : S_STATUS;
                else if (!is_out) begin
                    filling <= 1'b0;
                    if (hit)
                        copy(P_CACHE, line_base(hit_idx), P_HOST, 48'd0, 8'd128, S_CWAIT);
                    else
                        copy(P_MEDIA, {med_sec, 7'd0}, P_HOST, 48'd0, 8'd128, S_CWAIT);
                end else if (req_wb) begin
                    if (hit || has_free || !c_dirty[rr]) begin
                        line    <= alloc_idx;
                        filling <= 1'b1;
                        c_valid[alloc_idx] <= 1'b0;  // invalid until the whole sector is in
                        if (!hit && !has_free)
                            rr <= rr + 1'b1;
                        copy(P_HOST, 48'd0, P_CACHE, line_base(alloc_idx), 8'd128, S_CWAIT);
                    end else begin
                        // every line holds data the media has not seen: write the victim back first
                        line <= rr;
                        copy(P_CACHE, line_base(rr), P_MEDIA, {c_tag[rr] + media_base[40:0], 7'd0}, 8'd128,
                             S_EVICT_W);
                    end
                end else begin
                    filling <= 1'b0;
                    if (hit) begin
                        c_valid[hit_idx] <= 1'b0;
                        c_dirty[hit_idx] <= 1'b0;
                    end
                    copy(P_HOST, 48'd0, P_MEDIA, {med_sec, 7'd0}, 8'd128, S_CWAIT);
                end

            S_EVICT_W:
                if (cp_done) begin
                    c_dirty[line] <= 1'b0;
                    st <= S_SEC;
                end

            S_CWAIT:
                if (cp_done) begin
                    if (filling) begin
                        c_valid[line] <= 1'b1;
                        c_dirty[line] <= 1'b1;
                        c_tag[line]   <= sec_cur[40:0];
                    end
                    sec_cur  <= sec_cur + 64'd1;
                    sec_left <= sec_left - 31'd1;
                    st       <= S_SEC;
                end

            S_FLUSH:
                if (has_dirty) begin
                    line <= dirty_idx;
                    copy(P_CACHE, line_base(dirty_idx), P_MEDIA, {c_tag[dirty_idx] + media_base[40:0], 7'd0},
                         8'd128, S_FLUSH_W);
                end else
                    st <= S_SYNC;

            S_FLUSH_W:
                if (cp_done) begin
                    c_dirty[line] <= 1'b0;
                    st <= S_FLUSH;
                end

            S_SYNC:
                if (m_gnt)
                    st <= S_SYNC_W;

            S_SYNC_W:
                if (m_rvalid)
                    st <= S_STATUS;

            S_ID_W:
                if (cp_done)
                    st <= S_STATUS;

            S_STATUS:
                host_write(status_addr, {4{status_code}}, 4'b0001 << status_addr[1:0], S_USED0);

            S_USED0:
                host_write(q_used + 64'd4 + {45'd0, used_idx & qmask, 3'd0}, {16'd0, head}, 4'hf, S_USED1);

            S_USED1:
                host_write(q_used + 64'd8 + {45'd0, used_idx & qmask, 3'd0}, used_len, 4'hf, S_USED2);

            S_USED2:
                host_write(q_used, {used_idx + 16'd1, 16'd0}, 4'b1100, S_AVI);

            S_AVI:
                // VIRTQ_AVAIL_F_NO_INTERRUPT is read only now, after used.idx is out: a driver that
                // turns interrupts back on and then checks the used ring cannot miss this completion
                host_read(q_avail, S_DONE);

            S_DONE: begin
                used_idx   <= used_idx + 16'd1;
                last_avail <= last_avail + 16'd1;
                used_event <= !acc_half[0];
                st         <= S_AVF;
            end

            S_FATAL: begin
                fatal_event <= 1'b1;
                st          <= S_HALT;
            end

            S_HALT: ;

            S_DRAIN:
                if (!cp_busy && !rd_pend && !sync_pend)
                    st <= S_IDLE;

            S_HACC:
                if (h_gnt)
                    st <= acc_we ? ret_st : S_HRDW;

            S_HRDW:
                if (h_rvalid) begin
                    acc_rdata <= h_rdata;
                    st        <= ret_st;
                end

            default:
                st <= S_IDLE;
            endcase
        end
    end

    wire unused_ok = &{1'b0, sec_cur[63:41], d_flags[15:3], media_base[63:41], data_len[39:32],
                       h_sector[63:32]};
endmodule

`default_nettype wire
