// virtio-mmio register file of a virtio-blk device, behind a 32-bit AXI4-Lite slave: Version 2 (modern),
// or Version 1 (legacy: GuestPageSize/QueueAlign/QueuePFN, no FEATURES_OK, no QueueReady) when LEGACY=1.
//
// Holds everything the driver can see: identification, feature negotiation, the one split virtqueue's
// configuration, interrupt status/ACK, device status (with the FEATURES_OK check and reset on Status=0)
// and the virtio-blk configuration space at 0x100. The request engine (vblk_engine) only sees the
// negotiated state and reports events back (used buffer, fatal ring error).
//
// AXI4-Lite: a write is accepted when AW and W are both valid (legal: a slave may wait for both), the
// response follows one cycle later; a new request is taken in the cycle the previous response is
// handed over, so back-to-back transactions run at one per cycle. Reads have no side effects. Every
// response is OKAY; undefined offsets read as zero and ignore writes.
`default_nettype none

module vblk_regs #(
    parameter [31:0] VENDOR_ID     = 32'h4b544d4d,  // "MMTK"
    parameter [15:0] QUEUE_NUM_MAX = 16'd64,
    parameter        F_SEG_MAX     = 1,
    parameter        F_RO          = 0,
    parameter        F_BLK_SIZE    = 1,
    parameter        F_FLUSH       = 1,
    parameter        F_CONFIG_WCE  = 1,
    parameter        F_TOPOLOGY    = 1,
    parameter        F_INDIRECT    = 1,
    parameter        F_EVENT_IDX   = 1,
    parameter        LEGACY        = 0,
    parameter        WRITEBACK     = 0,            // cache mode after FEATURES_OK when FLUSH is negotiated
    parameter [31:0] SEG_MAX       = 32'd30,
    parameter [31:0] BLK_SIZE      = 32'd512,
    parameter [7:0]  PHYS_BLOCK_EXP = 8'd0,        // physical block = BLK_SIZE << PHYS_BLOCK_EXP
    parameter [7:0]  ALIGN_OFFSET  = 8'd0,
    parameter [15:0] MIN_IO_SIZE   = 16'd1,
    parameter [31:0] OPT_IO_SIZE   = 32'd8
) (
    input  wire        clk,
    input  wire        rst_n,

    input  wire [11:0] s_axil_awaddr,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output reg         s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [11:0] s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output reg  [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output reg         s_axil_rvalid,
    input  wire        s_axil_rready,

    input  wire [63:0] capacity,      // media size in 512-byte sectors
    input  wire        readonly,      // read-only medium (sampled at reset): RO offered, OUT fails
    input  wire        used_notify,   // engine completed a request and wants a used-buffer interrupt
    input  wire        fatal_event,   // engine found the rings unusable: DEVICE_NEEDS_RESET
    output reg         dev_reset,     // one-cycle pulse: driver wrote Status=0
    output wire        run,           // DRIVER_OK, FEATURES_OK, queue ready, no error
    output reg         notify,        // one-cycle pulse: QueueNotify(0)
    output reg  [15:0] q_num,
    output reg  [63:0] q_desc,
    output reg  [63:0] q_avail,
    output reg  [63:0] q_used,
    output reg         writeback,     // cache mode in effect: 1 = writeback, 0 = writethrough
    output reg         ro,            // the read-only input as sampled at the last reset
    output wire        indirect,      // VIRTIO_F_RING_INDIRECT_DESC negotiated
    output wire        event_idx,     // VIRTIO_F_EVENT_IDX negotiated
    output reg         q_ready,       // queue 0 enabled (QueueReady, or a legacy QueuePFN != 0)
    output wire        irq            // level: any InterruptStatus bit set
);
    localparam [63:0] BASE_FEATURES =
        ((LEGACY       == 0) ? (64'd1 << 32) : 64'd0)  // VIRTIO_F_VERSION_1 (modern only)
      | ((F_SEG_MAX    != 0) ? (64'd1 << 2)  : 64'd0)
      | ((F_RO         != 0) ? (64'd1 << 5)  : 64'd0)
      | ((F_BLK_SIZE   != 0) ? (64'd1 << 6)  : 64'd0)
      | ((F_FLUSH      != 0) ? (64'd1 << 9)  : 64'd0)
      | ((F_TOPOLOGY   != 0) ? (64'd1 << 10) : 64'd0)
      | ((F_CONFIG_WCE != 0) ? (64'd1 << 11) : 64'd0)
      | ((F_INDIRECT   != 0) ? (64'd1 << 28) : 64'd0)
      | ((F_EVENT_IDX  != 0) ? (64'd1 << 29) : 64'd0);
    wire [63:0] DEV_FEATURES = BASE_FEATURES | {58'd0, ro, 5'd0};  // RO: F_RO, or the readonly input

    // virtio 1.2, 5.2.5.2: a device that offers CONFIG_WCE must offer FLUSH. Such a build does not elaborate.
    generate
        if (F_CONFIG_WCE != 0 && F_FLUSH == 0) begin : g_bad_config
            vblk_error_config_wce_needs_flush u_error ();
        end
    endgenerate

    localparam [7:0] ST_ACK = 8'h01, ST_DRIVER = 8'h02, ST_DRIVER_OK = 8'h04, ST_FEATURES_OK = 8'h08,
                     ST_NEEDS_RESET = 8'h40, ST_FAILED = 8'h80;

    reg  [31:0] dev_feat_sel;
    reg  [31:0] drv_feat_sel;
    reg  [63:0] drv_feat;
    reg  [31:0] queue_sel;
    reg  [1:0]  int_status;
    reg  [7:0]  status;
    reg  [31:0] config_gen;
    reg  [63:0] capacity_seen;
    reg  [31:0] page_size, q_align, q_pfn;       // legacy queue layout

    // ---- AXI4-Lite handshakes --------------------------------------------------------------------
    wire wr_go = s_axil_awvalid && s_axil_wvalid && (!s_axil_bvalid || s_axil_bready);
    wire rd_go = s_axil_arvalid && (!s_axil_rvalid || s_axil_rready);
    assign s_axil_awready = wr_go;
    assign s_axil_wready  = wr_go;
    assign s_axil_arready = rd_go;
    assign s_axil_bresp   = 2'b00;
    assign s_axil_rresp   = 2'b00;

    wire [11:0] wa = {s_axil_awaddr[11:2], 2'b00};
    wire [11:0] ra = {s_axil_araddr[11:2], 2'b00};
    wire [31:0] wd = s_axil_wdata;
    wire        full_word = (s_axil_wstrb == 4'hf);
    wire        q0 = (queue_sel == 32'd0);
    wire        features_locked = (status & ST_FEATURES_OK) != 8'd0;

    // FEATURES_OK is accepted only for a subset of what we offer that includes VERSION_1.
    wire        feat_ok = ((drv_feat & ~DEV_FEATURES) == 64'd0) && drv_feat[32];
    wire        status_write = wr_go && full_word && (wa == 12'h070);
    wire        reset_write  = status_write && (wd == 32'd0);
    // Status bits are only ever set by a write, never cleared but by a reset (so FEATURES_OK, once
    // latched, stays); the driver owns ACKNOWLEDGE, DRIVER, DRIVER_OK and FAILED; FEATURES_OK sticks only
    // for an acceptable feature set (legacy has none); DEVICE_NEEDS_RESET is the device's.
    wire [7:0]  status_set = status
                           | (wd[7:0] & (ST_ACK | ST_DRIVER | ST_DRIVER_OK | ST_FAILED))
                           | ((LEGACY == 0 && wd[3] && feat_ok) ? ST_FEATURES_OK : 8'd0);
    // DRIVER_OK without FEATURES_OK (modern): the device needs a reset (virtio 1.2, 2.1.2)
    wire        bad_driver_ok = (LEGACY == 0) && status_set[2] && !status_set[3];
    wire [7:0]  status_written = status_set | (bad_driver_ok ? ST_NEEDS_RESET : 8'd0);
    // legacy: the features are the driver's last GuestFeatures write, there is no FEATURES_OK step
    wire        features_fixed = (LEGACY != 0) ? ((status & ST_DRIVER_OK) != 8'd0) : features_locked;
    wire        wce_negotiated = drv_feat[11] && ((LEGACY != 0) || features_locked);
    wire        driving = (LEGACY != 0) ? 1'b1 : features_locked;

    assign run = ((status & ST_DRIVER_OK) != 8'd0) && driving
              && ((status & (ST_NEEDS_RESET | ST_FAILED)) == 8'd0) && q_ready;
    assign irq = |int_status;
    assign indirect = drv_feat[28] && (F_INDIRECT != 0);
    assign event_idx = drv_feat[29] && (F_EVENT_IDX != 0);

    // legacy ring layout: descriptors at QueuePFN * GuestPageSize, the avail ring right after them,
    // the used ring at the next QueueAlign boundary
    wire [63:0] lg_desc  = {32'd0, q_pfn} * {32'd0, page_size};
    wire [63:0] lg_avail = lg_desc + {44'd0, q_num, 4'd0};
    wire [63:0] lg_amask = {32'd0, q_align} - 64'd1;
    wire [63:0] lg_used  = (lg_avail + {47'd0, q_num, 1'b0} + 64'd6 + lg_amask) & ~lg_amask;

    // ---- register writes, device events ------------------------------------------------------------
    always @(posedge clk) begin
        notify    <= 1'b0;
        dev_reset <= 1'b0;
        if (!rst_n) begin
            s_axil_bvalid <= 1'b0;
            dev_feat_sel  <= 32'd0;
            drv_feat_sel  <= 32'd0;
            drv_feat      <= 64'd0;
            queue_sel     <= 32'd0;
            q_num         <= 16'd0;
            q_ready       <= 1'b0;
            q_desc        <= 64'd0;
            q_avail       <= 64'd0;
            q_used        <= 64'd0;
            int_status    <= 2'b00;
            status        <= 8'd0;
            writeback     <= 1'b0;
            config_gen    <= 32'd0;
            capacity_seen <= capacity;
            dev_reset     <= 1'b1;
            ro            <= readonly;
            page_size     <= 32'd4096;
            q_align       <= 32'd4096;
            q_pfn         <= 32'd0;
        end else begin
            if (s_axil_bvalid && s_axil_bready)
                s_axil_bvalid <= 1'b0;

            if (wr_go) begin
                s_axil_bvalid <= 1'b1;
                if (full_word) begin
                    case (wa)
                    12'h014: dev_feat_sel <= wd;
                    12'h020: if (!features_fixed) begin
                                 // legacy has no FEATURES_OK check: what is not offered is not taken
                                 if (drv_feat_sel == 32'd0)
                                     drv_feat[31:0]  <= (LEGACY != 0) ? (wd & DEV_FEATURES[31:0]) : wd;
                                 if (drv_feat_sel == 32'd1 && LEGACY == 0) drv_feat[63:32] <= wd;
                             end
                    12'h024: drv_feat_sel <= wd;
                    12'h030: queue_sel <= wd;
                    12'h028: if (LEGACY != 0) page_size <= wd;
                    12'h038: if (q0 && !q_ready) q_num <= (wd[31:16] != 16'd0) ? 16'hffff : wd[15:0];
                    12'h03c: if (LEGACY != 0 && q0 && !q_ready) q_align <= wd;
                    12'h040: if (LEGACY != 0 && q0) begin
                                 // legacy: a PFN enables the queue, 0 disables it
                                 q_pfn   <= wd;
                                 q_ready <= (wd != 32'd0);
                                 q_desc  <= {32'd0, wd} * {32'd0, page_size};
                             end
                    // QueueReady=1 only once the features are fixed (virtio 1.2, 3.1.1 step 7 follows 5-6)
                    12'h044: if (LEGACY == 0 && q0) q_ready <= wd[0] && features_locked;
                    12'h050: if (wd == 32'd0) notify <= 1'b1;
                    12'h064: int_status <= int_status & ~wd[1:0];
                    12'h070: begin
                        if (wd == 32'd0) begin
                            // Device reset: back to the power-on state of everything the driver sees.
                            dev_feat_sel <= 32'd0;
                            drv_feat_sel <= 32'd0;
                            drv_feat     <= 64'd0;
                            queue_sel    <= 32'd0;
                            q_num        <= 16'd0;
                            q_ready      <= 1'b0;
                            q_desc       <= 64'd0;
                            q_avail      <= 64'd0;
                            q_used       <= 64'd0;
                            int_status   <= 2'b00;
                            status       <= 8'd0;
                            writeback    <= 1'b0;
                            dev_reset    <= 1'b1;
                            ro           <= readonly;
                            page_size    <= 32'd4096;
                            q_align      <= 32'd4096;
                            q_pfn        <= 32'd0;
                        end else begin
                            status <= status_written;
                            if (bad_driver_ok && (status & ST_NEEDS_RESET) == 8'd0)
                                int_status[1] <= 1'b1;
                            if (LEGACY == 0 && wd[3] && !features_locked && feat_ok)
                                // Initial cache mode: writethrough unless built WRITEBACK=1 and the
                                // driver can flush (virtio 1.2 5.2.5.1: without FLUSH, writeback is 0).
                                writeback <= drv_feat[9] && (WRITEBACK != 0);
                        end
                    end
                    12'h080: if (LEGACY == 0 && q0 && !q_ready) q_desc[31:0]   <= wd;
                    12'h084: if (LEGACY == 0 && q0 && !q_ready) q_desc[63:32]  <= wd;
                    12'h090: if (LEGACY == 0 && q0 && !q_ready) q_avail[31:0]  <= wd;
                    12'h094: if (LEGACY == 0 && q0 && !q_ready) q_avail[63:32] <= wd;
                    12'h0a0: if (LEGACY == 0 && q0 && !q_ready) q_used[31:0]   <= wd;
                    12'h0a4: if (LEGACY == 0 && q0 && !q_ready) q_used[63:32]  <= wd;
                    default: ;
                    endcase
                end
                // Config space takes byte writes: `writeback` (u8 at 0x120) is the only writable field.
                if (wa == 12'h120 && s_axil_wstrb[0] && wce_negotiated)
                    writeback <= wd[0];
            end
            // legacy: the avail and used rings follow from the PFN (and QueueNum, QueueAlign)
            if (LEGACY != 0 && q_ready) begin
                q_avail <= lg_avail;
                q_used  <= lg_used;
            end

            // Device events merge with a register write in the same cycle. A reset write wins, and so
            // does the cycle after it (dev_reset high): what the engine reported then belongs to the
            // session being torn down.
            if (!reset_write && !dev_reset) begin
                if (used_notify)
                    int_status[0] <= 1'b1;
                if (fatal_event) begin
                    status        <= (status_write ? status_written : status) | ST_NEEDS_RESET;
                    int_status[1] <= 1'b1;
                end
            end
            if (capacity != capacity_seen) begin
                capacity_seen <= capacity;
                config_gen    <= config_gen + 32'd1;
                if ((status & ST_DRIVER_OK) != 8'd0)
                    int_status[1] <= 1'b1;
            end
        end
    end

    // ---- register reads ----------------------------------------------------------------------------
    always @(posedge clk) begin
        if (!rst_n) begin
            s_axil_rvalid <= 1'b0;
            s_axil_rdata  <= 32'd0;
        end else begin
            if (s_axil_rvalid && s_axil_rready)
                s_axil_rvalid <= 1'b0;
            if (rd_go) begin
                s_axil_rvalid <= 1'b1;
                case (ra)
                12'h000: s_axil_rdata <= 32'h74726976;
                12'h004: s_axil_rdata <= (LEGACY != 0) ? 32'd1 : 32'd2;
                12'h008: s_axil_rdata <= 32'd2;
                12'h00c: s_axil_rdata <= VENDOR_ID;
                12'h010: s_axil_rdata <= (dev_feat_sel == 32'd0) ? DEV_FEATURES[31:0]
                                       : (dev_feat_sel == 32'd1) ? DEV_FEATURES[63:32] : 32'd0;
                12'h014: s_axil_rdata <= dev_feat_sel;
                12'h020: s_axil_rdata <= (drv_feat_sel == 32'd0) ? drv_feat[31:0]
                                       : (drv_feat_sel == 32'd1) ? drv_feat[63:32] : 32'd0;
                12'h024: s_axil_rdata <= drv_feat_sel;
                12'h028: s_axil_rdata <= (LEGACY != 0) ? page_size : 32'd0;
                12'h030: s_axil_rdata <= queue_sel;
                12'h034: s_axil_rdata <= q0 ? {16'd0, QUEUE_NUM_MAX} : 32'd0;
                12'h038: s_axil_rdata <= q0 ? {16'd0, q_num} : 32'd0;
                12'h03c: s_axil_rdata <= (LEGACY != 0 && q0) ? q_align : 32'd0;
                12'h040: s_axil_rdata <= (LEGACY != 0 && q0) ? q_pfn : 32'd0;
                12'h044: s_axil_rdata <= {31'd0, LEGACY == 0 && q0 && q_ready};
                12'h060: s_axil_rdata <= {30'd0, int_status};
                12'h070: s_axil_rdata <= {24'd0, status};
                12'h080: s_axil_rdata <= q0 ? q_desc[31:0]   : 32'd0;
                12'h084: s_axil_rdata <= q0 ? q_desc[63:32]  : 32'd0;
                12'h090: s_axil_rdata <= q0 ? q_avail[31:0]  : 32'd0;
                12'h094: s_axil_rdata <= q0 ? q_avail[63:32] : 32'd0;
                12'h0a0: s_axil_rdata <= q0 ? q_used[31:0]   : 32'd0;
                12'h0a4: s_axil_rdata <= q0 ? q_used[63:32]  : 32'd0;
                12'h0fc: s_axil_rdata <= config_gen;
                // struct virtio_blk_config
                12'h100: s_axil_rdata <= capacity[31:0];
                12'h104: s_axil_rdata <= capacity[63:32];
                12'h10c: s_axil_rdata <= (F_SEG_MAX != 0) ? SEG_MAX : 32'd0;
                12'h114: s_axil_rdata <= (F_BLK_SIZE != 0) ? BLK_SIZE : 32'd0;
                12'h118: s_axil_rdata <= (F_TOPOLOGY != 0) ? {MIN_IO_SIZE, ALIGN_OFFSET, PHYS_BLOCK_EXP} : 32'd0;
                12'h11c: s_axil_rdata <= (F_TOPOLOGY != 0) ? OPT_IO_SIZE : 32'd0;
                12'h120: s_axil_rdata <= {31'd0, writeback};  // writeback, unused0, num_queues = 0
                default: s_axil_rdata <= 32'd0;
                endcase
            end
        end
    end

    wire unused_ok = &{1'b0, s_axil_awaddr[1:0], s_axil_araddr[1:0]};
endmodule

`default_nettype wire
