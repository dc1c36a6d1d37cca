// virtio-blk request engine: consumes the split virtqueue, moves data between host memory, an on-chip
// write buffer and the media, and completes requests into the used ring. Several requests are in flight.
//
// Two FSMs share the ports:
//   * the front end (fe_*) reads avail.idx and a ring entry, walks the descriptor chain once (validating
//     it and recording up to 2**DTAB_AW descriptors into one of 2**CTX_AW (8) request contexts), reads the
//     16-byte header and decides the request. An IN or OUT asks the media to prepare its range (m_cmd 3,
//     tagged with the context); the media answers on m_ready[tag] when it is ready, after its own
//     latency. Anything else is ready at once. The front end goes on with the next chain meanwhile.
//   * the data engine (df_*) takes ready contexts in the order they became ready (so requests complete in
//     the order the media finishes them), transfers 512-byte sectors, syncs the media where needed, and
//     writes the status byte (last byte of the device-writable stream), the used element and used.idx,
//     then reads avail.flags and raises the used-buffer event unless NO_INTERRUPT. With EVENT_IDX
//     negotiated it reads avail->used_event instead, and raises the event only if the used entry just
//     filled is the one used_event names (virtio 1.2, 2.7.7.2: one element per used.idx update, so
//     vring_need_event reduces to equality).
// EVENT_IDX, the other direction (2.7.10): when the front end finds the avail ring empty it writes its
// next avail index to used->avail_event (only when that changed since it last wrote it), then reads
// avail.idx once more before going idle, so a driver that added a chain meanwhile and saw the old
// avail_event (and did not notify) is not missed. While chains are waiting, avail_event stays behind
// and the driver does not ring.
// The front end's single-word accesses go before the copy engine's on the host port (the copy waits a
// cycle, as under back-pressure), so descriptor fetches of the next request overlap this one's data copy.
//
// Malformed input never hangs the engine. The policy is the behavioural model's (and QEMU's), see
// hwsim/models/virtio_blk.py:
//   * a chain that breaks the virtqueue rules (bad queue setup, avail.idx more than a queue ahead, an
//     index >= its table's size, a chain longer than its table, i.e. a NEXT loop, a zero-length
//     descriptor, a buffer outside the host window, readable after writable, a bad or nested INDIRECT,
//     a header shorter than 16 bytes, no writable status byte) sets DEVICE_NEEDS_RESET via
//     `fatal_event` once every earlier request has completed, and the engine halts until the driver
//     resets the device;
//   * a well-formed chain the request cannot use (this engine's alignment contract, more descriptors
//     than it records, data not whole blocks, out of range, OUT on a read-only medium) completes with
//     IOERR, and a used length of 1 (only the status byte is written).
//
// INDIRECT (when negotiated) may be the last descriptor of a direct chain (virtio 1.2, 2.7.5.3.2); the
// walk then continues at entry 0 of the indirect table. QueueReady=0 (or FAILED) stops the engine at
// once, mid-request: no ring or buffer access after the register write, the requests are dropped.
//
// Alignment contract: descriptor buffers start 4-byte aligned and are a multiple of 4 long, except the
// last (device-writable) one, which is either 1 byte (status only, any address) or 4n+1 bytes. With the
// 64-bit datapath (DW=64) the buffers of an IN or OUT are 8-byte aligned and a multiple of 8 (8n+1 for
// the last); GET_ID (written 32 bits at a time) keeps the 4-byte contract. The engine's own accesses
// (rings, header, status) are 32-bit, on the lanes their address selects.
//
// Write buffer: NLINES lines of one sector. Writeback mode completes an OUT once its data is in a line;
// lines are written to media on FLUSH or on eviction. Writethrough writes the media, syncs it, then
// completes, and drops any buffered copy of the sector. Reads are served from the buffer when it holds
// the sector.
`default_nettype none

module vblk_engine #(
    parameter [63:0]  HOST_BASE     = 64'h0000_0000_8000_0000,
    parameter [63:0]  HOST_SIZE     = 64'h0000_0000_0100_0000,
    parameter [15:0]  QUEUE_NUM_MAX = 16'd64,
    parameter         F_FLUSH       = 1,
    parameter [31:0]  BLK_SIZE      = 32'd512,
    parameter         DTAB_AW       = 5,
    parameter         LINES_AW      = 3,
    parameter         CTX_AW        = 3,
    parameter         DW            = 32,      // host and media data path: 32 or 64 bits
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
    input  wire        event_idx,    // VIRTIO_F_EVENT_IDX negotiated
    input  wire        q_ready,
    input  wire [63:0] capacity,
    input  wire [63:0] media_base,   // sector of the backing store that is the device's sector 0
    output reg         used_notify,  // a used-buffer interrupt is due
    output reg         fatal_event,

    output wire        h_req,
    output wire        h_we,
    output wire [63:0] h_addr,
    output wire [DW-1:0]   h_wdata,
    output wire [DW/8-1:0] h_wstrb,
    input  wire        h_gnt,
    input  wire        h_rvalid,
    input  wire [DW-1:0]   h_rdata,

    output wire        m_req,
    output wire [1:0]  m_cmd,      // 0 read word, 1 write word, 2 sync (answer on m_rvalid), 3 prepare
    output wire [47:0] m_addr,     // word address: sector * (4096 / DW) + word; prepare: the sector
    output wire [DW-1:0] m_wdata,  // prepare: the tag (context) in the low bits
    input  wire        m_gnt,
    input  wire        m_rvalid,
    input  wire [DW-1:0] m_rdata,
    input  wire [(1 << CTX_AW) - 1:0] m_ready  // media ready for the prepared request of that tag
);
    localparam DT  = 1 << DTAB_AW;
    localparam NL  = 1 << LINES_AW;
    localparam NC  = 1 << CTX_AW;
    localparam SW  = (DW == 64) ? 6 : 7;   // log2(words per sector)
    localparam [7:0]  WPS = (DW == 64) ? 8'd64 : 8'd128;
    localparam [31:0] SB  = DW / 8;         // bytes per word
    localparam CAW = LINES_AW + SW;
    localparam TAW = CTX_AW + DTAB_AW;

    localparam [31:0] T_IN = 32'd0, T_OUT = 32'd1, T_FLUSH = 32'd4, T_GET_ID = 32'd8;
    localparam [7:0]  BLK_OK = 8'd0, BLK_IOERR = 8'd1, BLK_UNSUPP = 8'd2;
    localparam [1:0]  P_HOST = 2'd0, P_MEDIA = 2'd1, P_CACHE = 2'd2;
    // what a context asks of the data engine
    localparam [1:0]  K_STATUS = 2'd0, K_DATA = 2'd1, K_FLUSH = 2'd2, K_ID = 2'd3;
    // owners of host reads in flight (they return in order)
    localparam [1:0]  O_COPY = 2'd0, O_FE = 2'd1, O_DF = 2'd2;

    // ---- request contexts --------------------------------------------------------------------------
    reg  [NC-1:0]  c_busy;                    // allocated (front end filling, waiting or being served)
    reg  [15:0]    x_head   [0:NC-1];
    reg  [1:0]     x_kind   [0:NC-1];
    reg  [7:0]     x_code   [0:NC-1];
    reg            x_out    [0:NC-1];
    reg  [63:0]    x_sector [0:NC-1];
    reg  [30:0]    x_nsec   [0:NC-1];
    reg  [31:0]    x_used   [0:NC-1];
    reg  [63:0]    x_stat   [0:NC-1];
    reg  [7:0]     x_idn    [0:NC-1];
    reg  [DTAB_AW:0] x_nrd  [0:NC-1];
    reg  [DTAB_AW:0] x_rsi  [0:NC-1];
    reg  [31:0]    x_rso    [0:NC-1];
    reg  [63:0]    dt_addr  [0:(1 << TAW) - 1];
    reg  [31:0]    dt_len   [0:(1 << TAW) - 1];

    // ready queue: contexts in the order they became ready
    reg  [CTX_AW-1:0] rq [0:NC-1];
    reg  [CTX_AW:0]   rq_cnt;
    reg  [CTX_AW-1:0] rq_rp, rq_wp;
    reg  [NC-1:0]     mr_pend;                // media said ready, not queued yet

    // ring state
    reg  [15:0] last_avail, used_idx;
    reg         notify_pend;

    // ---- host-read ownership (returns come in order) ----------------------------------------------
    reg  [1:0]  own [0:7];
    reg  [2:0]  own_rp, own_wp;
    wire [1:0]  own_head = own[own_rp];
    wire        rv_copy = h_rvalid && own_head == O_COPY;
    wire        rv_fe   = h_rvalid && own_head == O_FE;
    wire        rv_df   = h_rvalid && own_head == O_DF;

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

    // ================================================================================================
    // Front end
    // ================================================================================================
    localparam [4:0] F_IDLE = 5'd0, F_AVF = 5'd1, F_RING = 5'd2, F_HEAD = 5'd3, F_DESC = 5'd4,
                     F_DESC_R = 5'd5, F_DCHK = 5'd6, F_PARSE = 5'd7, F_HDR = 5'd8, F_HDR_R = 5'd9,
                     F_DISPATCH = 5'd10, F_PREP = 5'd11, F_FATAL_W = 5'd12, F_FATAL = 5'd13, F_HALT = 5'd14,
                     F_HACC = 5'd15, F_HRDW = 5'd16, F_WAITCTX = 5'd17, F_DRAIN = 5'd18;
    reg  [4:0]  fst, f_ret;
    reg  [63:0] fa_addr;
    reg         fa_hi;
    reg         fa_we;
    reg  [31:0] fa_rdata, fa_wdata;
    reg  [3:0]  fa_wstrb;
    reg         ae_valid;                     // avail_event holds ae_val (EVENT_IDX)
    reg  [15:0] ae_val;
    wire [15:0] fa_half = fa_hi ? fa_rdata[31:16] : fa_rdata[15:0];

    reg  [CTX_AW-1:0] fc;                     // the context being filled
    reg  [15:0] head, cur;
    reg  [32:0] count;
    reg  [63:0] tbl;
    reg  [31:0] tbl_n;
    reg         in_ind;
    reg  [1:0]  dw;
    reg  [63:0] d_addr;
    reg  [31:0] d_len;
    reg  [15:0] d_flags, d_next;
    reg  [DTAB_AW:0] n_ent, n_rd;
    reg         seen_wr, bad, bad_w;
    reg  [39:0] rd_total, wr_total;
    reg  [63:0] last_addr;
    reg  [31:0] last_len;
    reg         last_wr, last_win;
    reg  [DTAB_AW:0] fh_i;
    reg  [31:0] fh_off;
    reg  [1:0]  hw;
    reg         skip_hdr;                     // the request fails before its header is read
    reg  [31:0] h_type;
    reg  [63:0] h_sector;

    // a free context
    reg                has_ctx;
    reg  [CTX_AW-1:0] free_ctx;
    integer q;
    always @* begin
        has_ctx = 1'b0; free_ctx = {CTX_AW{1'b0}};
        for (q = NC - 1; q >= 0; q = q - 1)
            if (!c_busy[q]) begin
                has_ctx = 1'b1; free_ctx = q[CTX_AW-1:0];
            end
    end

    wire [TAW-1:0] fh_idx = {fc, fh_i[DTAB_AW-1:0]};
    wire [63:0] fh_addr = dt_addr[fh_idx] + {32'd0, fh_off};

    wire        d_next_f = d_flags[0];
    wire        d_wr_f   = d_flags[1];
    wire        d_ind_f  = d_flags[2];
    wire        d_win    = in_win(d_addr, {32'd0, d_len}) && (d_len != 32'd0);
    // an INDIRECT descriptor this engine can follow: negotiated, not nested, not with NEXT, a whole
    // number of 4-byte-aligned 16-byte entries inside the window
    wire        d_ind_ok = indirect && !in_ind && !d_next_f && (d_len[3:0] == 4'd0) && d_win
                        && (d_addr[1:0] == 2'd0);
    wire        d_align  = d_next_f ? (d_addr[1:0] == 2'd0 && d_len[1:0] == 2'd0)
                                    : (d_len == 32'd1 || (d_addr[1:0] == 2'd0 && d_len[1:0] == 2'd1));
    wire [2:0]  wmask    = (DW == 64) ? 3'd7 : 3'd3;
    wire        d_align_w = d_next_f ? ((d_addr[2:0] & wmask) == 3'd0 && (d_len[2:0] & wmask) == 3'd0)
                                     : (d_len == 32'd1 || ((d_addr[2:0] & wmask) == 3'd0
                                                           && (d_len[2:0] & wmask) == 3'd1));

    wire [39:0] in_len   = wr_total - 40'd1;
    wire [39:0] out_len  = rd_total - 40'd16;
    wire [39:0] data_len = (h_type == T_OUT) ? out_len : in_len;
    wire [64:0] req_end  = {1'b0, h_sector} + {34'd0, data_len[39:9]};
    wire [31:0] blk_mask = BLK_SIZE - 32'd1;
    wire [31:0] sec_mask = (BLK_SIZE >> 9) - 32'd1;
    // whole logical blocks, starting on a logical block (sector is in 512-byte units)
    wire        range_ok = ((data_len[31:0] & blk_mask) == 32'd0) && ((h_sector[31:0] & sec_mask) == 32'd0)
                        && (data_len[8:0] == 9'd0) && (req_end <= {1'b0, capacity});
    // the context is ready at once unless it waits for the media
    wire        fe_media = !skip_hdr && ((h_type == T_IN) || (h_type == T_OUT && !ro)) && range_ok && !bad_w;
    wire        fe_push  = (fst == F_DISPATCH) && !fe_media;
    wire        fe_busy_ring = (fst != F_IDLE) && (fst != F_HALT) && (fst != F_DRAIN) && (fst != F_FATAL);

    // ================================================================================================
    // Data engine
    // ================================================================================================
    localparam [4:0] D_IDLE = 5'd0, D_LOAD = 5'd1, D_SEC = 5'd2, D_EVICT_W = 5'd3, D_CWAIT = 5'd4,
                     D_FLUSH = 5'd5, D_FLUSH_W = 5'd6, D_SYNC = 5'd7, D_SYNC_W = 5'd8, D_ID_W = 5'd9,
                     D_STATUS = 5'd10, D_USED0 = 5'd11, D_USED1 = 5'd12, D_USED2 = 5'd13, D_AVI = 5'd14,
                     D_DONE = 5'd15, D_HACC = 5'd16, D_HRDW = 5'd17, D_DRAIN = 5'd18, D_ID_ADV = 5'd19;
    reg  [4:0]  dst, d_ret;
    reg  [63:0] da_addr;
    reg         da_we;
    reg         da_hi;
    reg  [31:0] da_wdata, da_rdata;
    wire [15:0] da_half = da_hi ? da_rdata[31:16] : da_rdata[15:0];
    reg  [3:0]  da_wstrb;
    reg  [2:0]  id_k;
    reg         sync_pend;

    reg  [CTX_AW-1:0] dc;                     // the context being served
    reg  [DTAB_AW:0] rs_i, ws_i;
    reg  [31:0] rs_off, ws_off;
    reg  [63:0] sec_cur;
    reg  [30:0] sec_left;
    reg         is_out, filling, req_wb;

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
    wire [DW-1:0] cp_h_wdata, cp_m_wdata;
    wire [47:0] cp_m_addr;
    wire        cp_hrs_adv, cp_hws_adv;
    wire        c_re, c_we, c_rvalid;
    wire [CAW-1:0] c_raddr, c_waddr;
    wire [DW-1:0] c_rdata, c_wdata;

    wire [63:0] rs_addr = dt_addr[{dc, rs_i[DTAB_AW-1:0]}] + {32'd0, rs_off};
    wire [63:0] ws_addr = dt_addr[{dc, ws_i[DTAB_AW-1:0]}] + {32'd0, ws_off};
    // the backing store's sector of a device sector (the device-side range)
    wire [40:0] med_sec = sec_cur[40:0] + media_base[40:0];

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
            line_base = {{(48 - LINES_AW){1'b0}}, idx} << SW;
        end
    endfunction

    // The queue was disabled (QueueReady=0) or the driver gave up (FAILED) while requests were under
    // way: from this cycle on, no access at all.
    wire        df_active = (dst != D_IDLE) && (dst != D_DRAIN);
    wire        stop = !run && (fe_busy_ring || df_active || c_busy != {NC{1'b0}});

    // ---- ports -------------------------------------------------------------------------------------
    // host: the front end's single accesses, then the data engine's, then the copy engine
    wire        own_full = (own_wp + 3'd1) == own_rp;
    wire        fe_h  = (fst == F_HACC) && !stop && !own_full;
    wire        df_h  = (dst == D_HACC) && !stop && !fe_h && !(own_full && !da_we);
    wire        cp_h_gnt = h_gnt && !fe_h && !df_h && !own_full;
    // the engine's 32-bit accesses on the lanes of a DW-bit port
    wire [63:0] s_addr = fe_h ? fa_addr : da_addr;
    wire [31:0] s_wdata = fe_h ? fa_wdata : da_wdata;
    wire [3:0]  s_wstrb = fe_h ? fa_wstrb : da_wstrb;
    wire        s_lane = (DW == 64) && s_addr[2];
    wire [63:0] wd64   = {s_wdata, s_wdata};
    wire [7:0]  ws8    = s_lane ? {s_wstrb, 4'd0} : {4'd0, s_wstrb};
    wire [7:0]  wsall  = 8'hff;
    assign h_req   = fe_h || df_h || (cp_h_req && !own_full && (fst != F_HACC) && (dst != D_HACC));
    assign h_we    = fe_h ? fa_we : df_h ? da_we : cp_h_we;
    assign h_addr  = (fe_h || df_h) ? ((DW == 64) ? {s_addr[63:3], 3'd0} : s_addr) : cp_h_addr;
    assign h_wdata = (fe_h || df_h) ? wd64[DW-1:0] : cp_h_wdata;
    assign h_wstrb = (fe_h || df_h) ? ws8[DW/8-1:0] : wsall[DW/8-1:0];
    // a 32-bit read result: the lane of the address the reader asked for
    reg  [31:0] r32_fe, r32_df;
    generate
        if (DW == 64) begin : g_lanes64
            always @* begin
                r32_fe = fa_addr[2] ? h_rdata[DW-1:DW-32] : h_rdata[31:0];
                r32_df = da_addr[2] ? h_rdata[DW-1:DW-32] : h_rdata[31:0];
            end
        end else begin : g_lanes32
            always @* begin
                r32_fe = h_rdata[31:0];
                r32_df = h_rdata[31:0];
            end
        end
    endgenerate
    wire        h_read_go = h_req && h_gnt && !h_we;

    // media: the front end's prepare, then the data engine's sync, then the copy engine
    wire        fe_m = (fst == F_PREP) && !stop;
    wire        df_m = (dst == D_SYNC) && !stop && !fe_m;
    wire        cp_m_gnt = m_gnt && !fe_m && !df_m;
    assign m_req   = fe_m || df_m || cp_m_req;
    assign m_cmd   = fe_m ? 2'd3 : df_m ? 2'd2 : {1'b0, cp_m_we};
    assign m_addr  = fe_m ? {7'd0, h_sector[40:0] + media_base[40:0]} : df_m ? 48'd0 : cp_m_addr;
    assign m_wdata = fe_m ? {{(DW - CTX_AW){1'b0}}, fc} : cp_m_wdata;

    // Byte i of the ID string is its i-th character; a Verilog string holds the first one on top.
    function [159:0] le_bytes(input [159:0] str);
        integer i;
        begin
            for (i = 0; i < 20; i = i + 1)
                le_bytes[8*i +: 8] = str[159 - 8*i -: 8];
        end
    endfunction
    localparam [159:0] ID_LE = le_bytes(ID);

    function [31:0] id_word(input [2:0] w);
        begin
            case (w)
            3'd0: id_word = ID_LE[31:0];
            3'd1: id_word = ID_LE[63:32];
            3'd2: id_word = ID_LE[95:64];
            3'd3: id_word = ID_LE[127:96];
            default: id_word = ID_LE[159:128];
            endcase
        end
    endfunction

    vblk_copy #(.DW(DW), .CAW(CAW)) u_copy (
        .clk(clk), .rst_n(rst_n), .abort(dev_reset || stop),
        .start(cp_start), .src_sel(cp_src), .dst_sel(cp_dst), .nwords(cp_n),
        .src_lin(cp_slin), .dst_lin(cp_dlin), .busy(cp_busy), .done(cp_done),
        .hrs_addr(rs_addr), .hrs_adv(cp_hrs_adv), .hws_addr(ws_addr), .hws_adv(cp_hws_adv),
        .h_req(cp_h_req), .h_we(cp_h_we), .h_addr(cp_h_addr), .h_wdata(cp_h_wdata),
        .h_gnt(cp_h_gnt), .h_rvalid(rv_copy), .h_rdata(h_rdata),
        .m_req(cp_m_req), .m_we(cp_m_we), .m_addr(cp_m_addr), .m_wdata(cp_m_wdata),
        .m_gnt(cp_m_gnt), .m_rvalid(m_rvalid), .m_rdata(m_rdata),
        .c_re(c_re), .c_raddr(c_raddr), .c_rvalid(c_rvalid), .c_rdata(c_rdata),
        .c_we(c_we), .c_waddr(c_waddr), .c_wdata(c_wdata));

    vblk_cache #(.DW(DW), .AW(CAW)) u_cache (
        .clk(clk), .rst_n(rst_n), .we(c_we), .waddr(c_waddr), .wdata(c_wdata),
        .re(c_re), .raddr(c_raddr), .rdata(c_rdata), .rvalid(c_rvalid));

    // ---- helpers used inside the FSMs ------------------------------------------------------------
    // The low address bits select lanes, not words: unused inside these tasks by design.
    /* verilator lint_off UNUSEDSIGNAL */
    task fe_read(input [63:0] addr, input [4:0] back);
        begin
            fa_addr <= {addr[63:2], 2'b00};
            fa_hi   <= addr[1];
            fa_we   <= 1'b0;
            f_ret   <= back;
            fst     <= F_HACC;
        end
    endtask

    // a 16-bit store (avail_event) on the half of the word its address selects
    task fe_write16(input [63:0] addr, input [15:0] data, input [4:0] back);
        begin
            fa_addr  <= {addr[63:2], 2'b00};
            fa_we    <= 1'b1;
            fa_wdata <= {data, data};
            fa_wstrb <= addr[1] ? 4'b1100 : 4'b0011;
            f_ret    <= back;
            fst      <= F_HACC;
        end
    endtask

    task df_access(input we, input [63:0] addr, input [31:0] data, input [3:0] strb, input [4:0] back);
        begin
            da_addr  <= {addr[63:2], 2'b00};
            da_hi    <= addr[1];
            da_we    <= we;
            da_wdata <= data;
            da_wstrb <= strb;
            d_ret    <= back;
            dst      <= D_HACC;
        end
    endtask
    /* verilator lint_on UNUSEDSIGNAL */

    task copy(input [1:0] src, input [47:0] slin, input [1:0] dsel, input [47:0] dlin, input [7:0] n,
              input [4:0] wait_st);
        begin
            cp_start <= 1'b1;
            cp_src   <= src;
            cp_slin  <= slin;
            cp_dst   <= dsel;
            cp_dlin  <= dlin;
            cp_n     <= n;
            dst      <= wait_st;
        end
    endtask

    // a context the front end has finished: what the data engine must do with it
    task fe_done(input [1:0] kind, input [7:0] code, input [31:0] used);
        begin
            x_kind[fc] <= kind;
            x_code[fc] <= code;
            x_used[fc] <= used;
        end
    endtask

    // ---- host-read ownership bookkeeping, stream pointers, the ready queue ----------------------------
    always @(posedge clk) begin
        if (!rst_n) begin
            own_rp <= 3'd0;
            own_wp <= 3'd0;
        end else begin
            if (h_read_go) begin
                own[own_wp] <= fe_h ? O_FE : df_h ? O_DF : O_COPY;
                own_wp <= own_wp + 3'd1;
            end
            if (h_rvalid)
                own_rp <= own_rp + 3'd1;
        end
    end

    // ================================================================================================
    // The front end FSM
    // ================================================================================================
    always @(posedge clk) begin
        fatal_event <= 1'b0;
        if (notify)
            notify_pend <= 1'b1;
        if (fst == F_HRDW && rv_fe)
            fa_rdata <= r32_fe;

        if (!rst_n) begin
            fst         <= F_IDLE;
            notify_pend <= 1'b0;
            last_avail  <= 16'd0;
            ae_valid    <= 1'b0;
        end else if (dev_reset) begin
            fst         <= F_DRAIN;
            notify_pend <= 1'b0;
            last_avail  <= 16'd0;
            ae_valid    <= 1'b0;
        end else if (stop) begin
            fst <= F_DRAIN;
        end else begin
            if (!q_ready) begin
                last_avail <= 16'd0;  // a disabled queue starts over at ring index 0
                ae_valid   <= 1'b0;
            end
            case (fst)
            F_IDLE:
                if (run && notify_pend)
                    fst <= q_ok ? F_WAITCTX : F_FATAL_W;

            F_WAITCTX:
                if (!run)
                    fst <= F_IDLE;
                else if (has_ctx) begin
                    fc <= free_ctx;
                    fst <= F_AVF;
                end

            F_AVF: begin
                notify_pend <= notify;  // a notify from now on means "look again"
                fe_read(q_avail + 64'd2, F_RING);
            end

            F_RING:
                if (fa_half == last_avail) begin
                    if (event_idx && !(ae_valid && ae_val == last_avail)) begin
                        // EVENT_IDX: ask for a notify at the next entry, then look at avail.idx again
                        ae_valid <= 1'b1;
                        ae_val   <= last_avail;
                        fe_write16(q_used + 64'd4 + {45'd0, q_num, 3'd0}, last_avail, F_AVF);
                    end else
                        fst <= F_IDLE;
                end
                else if (fa_half - last_avail > q_num)
                    fst <= F_FATAL_W;
                else
                    fe_read(q_avail + 64'd4 + {47'd0, last_avail & qmask, 1'b0}, F_HEAD);

            F_HEAD:
                if (fa_half >= q_num)
                    fst <= F_FATAL_W;
                else begin
                    head     <= fa_half;
                    cur      <= fa_half;
                    count    <= 33'd0;
                    tbl      <= q_desc;
                    tbl_n    <= {16'd0, q_num};
                    in_ind   <= 1'b0;
                    n_ent    <= {(DTAB_AW + 1){1'b0}};
                    n_rd     <= {(DTAB_AW + 1){1'b0}};
                    seen_wr  <= 1'b0;
                    bad      <= 1'b0;
                    bad_w    <= 1'b0;
                    rd_total <= 40'd0;
                    wr_total <= 40'd0;
                    dw       <= 2'd0;
                    fst      <= F_DESC;
                end

            F_DESC:
                fe_read(tbl + {44'd0, cur, 4'd0} + {60'd0, dw, 2'b00}, F_DESC_R);

            F_DESC_R: begin
                case (dw)
                2'd0: d_addr[31:0]  <= fa_rdata;
                2'd1: d_addr[63:32] <= fa_rdata;
                2'd2: d_len         <= fa_rdata;
                default: {d_next, d_flags} <= fa_rdata;
                endcase
                dw  <= dw + 2'd1;
                fst <= (dw == 2'd3) ? F_DCHK : F_DESC;
            end

            F_DCHK: begin
                count <= count + 33'd1;
                if (count + 33'd1 > {1'b0, tbl_n})
                    fst <= F_FATAL_W;  // longer than its table: a NEXT loop
                else if (d_ind_f) begin
                    if (!d_ind_ok)
                        fst <= F_FATAL_W;
                    else begin
                        // the rest of the chain is the indirect table, from its entry 0
                        tbl    <= d_addr;
                        tbl_n  <= {4'd0, d_len[31:4]};
                        in_ind <= 1'b1;
                        cur    <= 16'd0;
                        count  <= 33'd0;
                        dw     <= 2'd0;
                        fst    <= F_DESC;
                    end
                end else if (!d_win || (!d_wr_f && seen_wr))
                    fst <= F_FATAL_W;  // zero length, outside the window, readable after writable
                else begin
                    if (!d_align || n_ent == DT[DTAB_AW:0])
                        bad <= 1'b1;
                    if (!d_align_w)
                        bad_w <= 1'b1;
                    if (d_wr_f) begin
                        seen_wr  <= 1'b1;
                        wr_total <= wr_total + {8'd0, d_len};
                    end else
                        rd_total <= rd_total + {8'd0, d_len};
                    if (n_ent != DT[DTAB_AW:0]) begin
                        dt_addr[{fc, n_ent[DTAB_AW-1:0]}] <= d_addr;
                        dt_len[{fc, n_ent[DTAB_AW-1:0]}]  <= d_len;
                        n_ent <= n_ent + 1'b1;
                        if (!d_wr_f)
                            n_rd <= n_rd + 1'b1;
                    end
                    if (d_next_f) begin
                        if ({16'd0, d_next} >= tbl_n)
                            fst <= F_FATAL_W;
                        else begin
                            cur <= d_next;
                            dw  <= 2'd0;
                            fst <= F_DESC;
                        end
                    end else begin
                        last_addr <= d_addr;
                        last_len  <= d_len;
                        last_wr   <= d_wr_f;
                        last_win  <= d_win;
                        fst       <= F_PARSE;
                    end
                end
            end

            F_PARSE:
                if (!last_wr || !last_win || rd_total < 40'd16)
                    fst <= F_FATAL_W;  // nowhere to put a status byte, or no whole header
                else begin
                    // the chain is taken: it belongs to context fc from now on
                    last_avail  <= last_avail + 16'd1;
                    x_head[fc]  <= head;
                    x_stat[fc]  <= last_addr + {32'd0, last_len} - 64'd1;
                    x_nrd[fc]   <= n_rd;
                    fh_i        <= {(DTAB_AW + 1){1'b0}};
                    fh_off      <= 32'd0;
                    hw          <= 2'd0;
                    skip_hdr    <= bad;
                    fst         <= bad ? F_DISPATCH : F_HDR;
                end

            F_HDR:
                fe_read(fh_addr, F_HDR_R);

            F_HDR_R: begin
                case (hw)
                2'd0: h_type <= fa_rdata;
                2'd2: h_sector[31:0] <= fa_rdata;
                2'd3: h_sector[63:32] <= fa_rdata;
                default: ;
                endcase
                if (fh_off + 32'd4 >= dt_len[fh_idx]) begin
                    fh_i   <= fh_i + 1'b1;
                    fh_off <= 32'd0;
                end else
                    fh_off <= fh_off + 32'd4;
                hw  <= hw + 2'd1;
                fst <= (hw == 2'd3) ? F_DISPATCH : F_HDR;
            end

            F_DISPATCH: begin
                x_rsi[fc]    <= fh_i;
                x_rso[fc]    <= fh_off;
                x_sector[fc] <= h_sector;
                x_nsec[fc]   <= data_len[39:9];
                x_out[fc]    <= (h_type == T_OUT);
                fst          <= F_WAITCTX;
                if (skip_hdr)
                    fe_done(K_STATUS, BLK_IOERR, 32'd1);
                else begin
                    case (h_type)
                    T_IN:
                        if (!range_ok || bad_w)
                            fe_done(K_STATUS, BLK_IOERR, 32'd1);
                        else begin
                            fe_done(K_DATA, BLK_OK, wr_total[31:0]);
                            fst <= F_PREP;
                        end
                    T_OUT:
                        if (ro || !range_ok || bad_w)
                            fe_done(K_STATUS, BLK_IOERR, 32'd1);
                        else begin
                            fe_done(K_DATA, BLK_OK, 32'd1);
                            fst <= F_PREP;
                        end
                    T_FLUSH:
                        if (F_FLUSH != 0)
                            fe_done(K_FLUSH, BLK_OK, 32'd1);
                        else
                            fe_done(K_STATUS, BLK_UNSUPP, 32'd1);
                    T_GET_ID: begin
                        if (in_len >= 40'd20) begin
                            fe_done(K_ID, BLK_OK, 32'd21);
                            x_idn[fc] <= 8'd5;
                        end else begin
                            fe_done(K_ID, BLK_OK, {27'd0, in_len[4:2], 2'b01});
                            x_idn[fc] <= {5'd0, in_len[4:2]};
                        end
                    end
                    default:
                        fe_done(K_STATUS, BLK_UNSUPP, 32'd1);
                    endcase
                end
            end

            F_PREP:
                if (m_gnt)
                    fst <= F_WAITCTX;

            F_FATAL_W:
                // the chains before this one complete first
                if (c_busy == {NC{1'b0}} && dst == D_IDLE)
                    fst <= F_FATAL;

            F_FATAL: begin
                fatal_event <= 1'b1;
                fst         <= F_HALT;
            end

            F_HALT: ;

            F_DRAIN:
                if (own_rp == own_wp)
                    fst <= F_IDLE;

            F_HACC:
                if (fe_h && h_gnt)
                    fst <= fa_we ? f_ret : F_HRDW;

            F_HRDW:
                if (rv_fe)
                    fst <= f_ret;

            default:
                fst <= F_IDLE;
            endcase
        end
    end

    // ================================================================================================
    // Contexts, the ready queue and the data engine FSM
    // ================================================================================================
    reg  [NC-1:0] c_wait;                     // prepared, the media not ready yet
    wire [NC-1:0] mr_now = mr_pend | (m_ready & c_wait);
    reg           mr_any;
    reg  [CTX_AW-1:0] mr_idx;
    integer m;
    always @* begin
        mr_any = 1'b0; mr_idx = {CTX_AW{1'b0}};
        for (m = NC - 1; m >= 0; m = m - 1)
            if (mr_now[m]) begin
                mr_any = 1'b1; mr_idx = m[CTX_AW-1:0];
            end
    end
    wire          rq_push_fe = fe_push && !stop && !dev_reset;
    wire          rq_push_mr = !rq_push_fe && mr_any;
    wire          rq_pop     = (dst == D_IDLE) && (rq_cnt != {(CTX_AW + 1){1'b0}}) && run && !stop;

    always @(posedge clk) begin
        used_notify <= 1'b0;
        cp_start   <= 1'b0;

        if (!cp_busy && m_rvalid)
            sync_pend <= 1'b0;
        if (dst == D_SYNC && m_gnt && !fe_m && !stop)
            sync_pend <= 1'b1;
        if (dst == D_HRDW && rv_df)
            da_rdata <= r32_df;

        if (cp_hrs_adv) begin
            if (rs_off + SB >= dt_len[{dc, rs_i[DTAB_AW-1:0]}]) begin
                rs_i   <= rs_i + 1'b1;
                rs_off <= 32'd0;
            end else
                rs_off <= rs_off + SB;
        end
        // the copy engine writes DW-bit words; GET_ID is written 32 bits at a time
        if (cp_hws_adv || dst == D_ID_ADV) begin
            if (ws_off + (cp_hws_adv ? SB : 32'd4) >= dt_len[{dc, ws_i[DTAB_AW-1:0]}]) begin
                ws_i   <= ws_i + 1'b1;
                ws_off <= 32'd0;
            end else
                ws_off <= ws_off + (cp_hws_adv ? SB : 32'd4);
        end

        if (!rst_n) begin
            dst       <= D_IDLE;
            sync_pend <= 1'b0;
            used_idx  <= 16'd0;
            c_busy    <= {NC{1'b0}};
            rq_cnt    <= {(CTX_AW + 1){1'b0}};
            rq_rp     <= {CTX_AW{1'b0}};
            rq_wp     <= {CTX_AW{1'b0}};
            mr_pend   <= {NC{1'b0}};
            c_wait    <= {NC{1'b0}};
            c_valid   <= {NL{1'b0}};
            c_dirty   <= {NL{1'b0}};
            rr        <= {LINES_AW{1'b0}};
        end else if (dev_reset || stop) begin
            // Virtio reset (or the queue stopped): forget the ring and every request, keep the write
            // buffer (it is the device's, not the driver's); any line being filled stays invalid.
            dst      <= D_DRAIN;
            if (dev_reset)
                used_idx <= 16'd0;
            c_busy   <= {NC{1'b0}};
            rq_cnt   <= {(CTX_AW + 1){1'b0}};
            rq_rp    <= {CTX_AW{1'b0}};
            rq_wp    <= {CTX_AW{1'b0}};
            mr_pend  <= {NC{1'b0}};
            c_wait   <= {NC{1'b0}};
        end else begin
            if (!q_ready)
                used_idx <= 16'd0;
            // contexts: allocated when the front end takes a chain, ready when decided (or when the media
            // is ready), freed when completed
            if (fst == F_PARSE && last_wr && last_win && rd_total >= 40'd16)
                c_busy[fc] <= 1'b1;
            // (guarded so that an idle engine does nothing per clock: simulation speed)
            if (mr_any)
                mr_pend <= (mr_now & ~((rq_push_mr ? {{(NC - 1){1'b0}}, 1'b1} << mr_idx : {NC{1'b0}})));
            if (m_ready != {NC{1'b0}} || fe_m)
                c_wait <= (c_wait & ~m_ready) | ((fe_m && m_gnt) ? {{(NC - 1){1'b0}}, 1'b1} << fc : {NC{1'b0}});
            if (rq_push_fe || rq_push_mr) begin
                rq[rq_wp] <= rq_push_fe ? fc : mr_idx;
                rq_wp     <= rq_wp + 1'b1;
            end
            if (rq_pop)
                rq_rp <= rq_rp + 1'b1;
            if (rq_push_fe || rq_push_mr || rq_pop)
                rq_cnt <= rq_cnt + {{CTX_AW{1'b0}}, rq_push_fe || rq_push_mr} - {{CTX_AW{1'b0}}, rq_pop};

            case (dst)
            D_IDLE:
                if (rq_pop) begin
                    dc  <= rq[rq_rp];
                    dst <= D_LOAD;
                end

            D_LOAD: begin
                rs_i     <= x_rsi[dc];
                rs_off   <= x_rso[dc];
                ws_i     <= x_nrd[dc];
                ws_off   <= 32'd0;
                sec_cur  <= x_sector[dc];
                sec_left <= x_nsec[dc];
                is_out   <= x_out[dc];
                req_wb   <= writeback;
                case (x_kind[dc])
                K_DATA:  dst <= D_SEC;
                K_FLUSH: dst <= D_FLUSH;
                K_ID: begin
                    id_k <= 3'd0;
                    dst  <= D_ID_W;
                end
                default: dst <= D_STATUS;
                endcase
            end

            D_SEC:
                if (sec_left == 31'd0)
                    // writethrough: the data is durable before the OUT completes (virtio 1.2, 5.2.6)
                    dst <= (is_out && !req_wb) ? D_SYNC : D_STATUS;
                else if (!is_out) begin
                    filling <= 1'b0;
                    if (hit)
                        copy(P_CACHE, line_base(hit_idx), P_HOST, 48'd0, WPS, D_CWAIT);
                    else
                        copy(P_MEDIA, ({7'd0, med_sec} << SW), P_HOST, 48'd0, WPS, D_CWAIT);
                end else if (req_wb) begin
                    if (hit || has_free || !c_dirty[rr]) begin
                        line    <= alloc_idx;
                        filling <= 1'b1;
                        c_valid[alloc_idx] <= 1'b0;  // invalid until the whole sector is in
                        if (!hit && !has_free)
                            rr <= rr + 1'b1;
                        copy(P_HOST, 48'd0, P_CACHE, line_base(alloc_idx), WPS, D_CWAIT);
                    end else begin
                        // every line holds data the media has not seen: write the victim back first
                        line <= rr;
                        copy(P_CACHE, line_base(rr), P_MEDIA, ({7'd0, c_tag[rr] + media_base[40:0]} << SW), WPS,
                             D_EVICT_W);
                    end
                end else begin
                    filling <= 1'b0;
                    if (hit) begin
                        c_valid[hit_idx] <= 1'b0;
                        c_dirty[hit_idx] <= 1'b0;
                    end
                    copy(P_HOST, 48'd0, P_MEDIA, ({7'd0, med_sec} << SW), WPS, D_CWAIT);
                end

            D_EVICT_W:
                if (cp_done) begin
                    c_dirty[line] <= 1'b0;
                    dst <= D_SEC;
                end

            D_CWAIT:
                if (cp_done) begin
                    if (filling) begin
                        c_valid[line] <= 1'b1;
                        c_dirty[line] <= 1'b1;
                        c_tag[line]   <= sec_cur[40:0];
                    end
                    sec_cur  <= sec_cur + 64'd1;
                    sec_left <= sec_left - 31'd1;
                    dst      <= D_SEC;
                end

            D_FLUSH:
                if (has_dirty) begin
                    line <= dirty_idx;
                    copy(P_CACHE, line_base(dirty_idx), P_MEDIA, ({7'd0, c_tag[dirty_idx] + media_base[40:0]} << SW),
                         WPS, D_FLUSH_W);
                end else
                    dst <= D_SYNC;

            D_FLUSH_W:
                if (cp_done) begin
                    c_dirty[line] <= 1'b0;
                    dst <= D_FLUSH;
                end

            D_SYNC:
                if (m_gnt && !fe_m)
                    dst <= D_SYNC_W;

            D_SYNC_W:
                if (m_rvalid)
                    dst <= D_STATUS;

            D_ID_W:
                if ({5'd0, id_k} == x_idn[dc])
                    dst <= D_STATUS;
                else
                    df_access(1'b1, ws_addr, id_word(id_k), 4'hf, D_ID_ADV);

            D_ID_ADV: begin
                id_k <= id_k + 3'd1;
                dst  <= D_ID_W;
            end

            D_STATUS:
                df_access(1'b1, x_stat[dc], {4{x_code[dc]}}, 4'b0001 << x_stat[dc][1:0], D_USED0);

            D_USED0:
                df_access(1'b1, q_used + 64'd4 + {45'd0, used_idx & qmask, 3'd0}, {16'd0, x_head[dc]}, 4'hf,
                          D_USED1);

            D_USED1:
                df_access(1'b1, q_used + 64'd8 + {45'd0, used_idx & qmask, 3'd0}, x_used[dc], 4'hf, D_USED2);

            D_USED2:
                df_access(1'b1, q_used, {used_idx + 16'd1, 16'd0}, 4'b1100, D_AVI);

            D_AVI:
                // VIRTQ_AVAIL_F_NO_INTERRUPT (or, with EVENT_IDX, used_event) is read only now, after
                // used.idx is out: a driver that turns interrupts back on and then checks the used ring
                // cannot miss this completion
                df_access(1'b0, event_idx ? q_avail + 64'd4 + {47'd0, q_num, 1'b0} : q_avail, 32'd0, 4'h0,
                          D_DONE);

            D_DONE: begin
                used_idx    <= used_idx + 16'd1;
                used_notify <= event_idx ? (da_half == used_idx) : !da_half[0];
                c_busy[dc] <= 1'b0;
                dst        <= D_IDLE;
            end

            D_DRAIN:
                if (!cp_busy && !sync_pend && own_rp == own_wp)
                    dst <= D_IDLE;

            D_HACC:
                if (df_h && h_gnt)
                    dst <= da_we ? d_ret : D_HRDW;

            D_HRDW:
                if (rv_df)
                    dst <= d_ret;

            default:
                dst <= D_IDLE;
            endcase
        end
    end

    wire unused_ok = &{1'b0, sec_cur[63:41], d_flags[15:3], media_base[63:41], data_len[39:32],
                       h_sector[63:41], m_rdata[0], da_rdata, wd64, ws8, wsall,
                       s_addr[1:0]};
endmodule

`default_nettype wire
