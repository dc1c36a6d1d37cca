// virtio-blk over virtio-mmio (Version 2, or Version 1 with LEGACY=1): the block controller's top level.
//
//   s_axil_*  32-bit AXI4-Lite slave: the virtio-mmio registers (0x000-0x0ff) and config (0x100-0x1ff)
//   dma_*     host memory master: one DATA_W-bit word per request (req/gnt), reads return in order
//             (rvalid/rdata), writes carry byte strobes and are posted
//   med_*     media port: DATA_W-bit word read/write by word address (sector * 4096 / DATA_W + word);
//             sync, which answers on med_rvalid once everything written before it is durable; prepare
//             (med_addr = first sector, tag in med_wdata), which the media answers on med_ready[tag]
//             when it can transfer that request's data
//   irq       level interrupt: InterruptStatus != 0
//   capacity  device size in 512-byte sectors; media_base: the backing store's sector that is the
//             device's sector 0 (the device-side range is [media_base, media_base + capacity))
//   readonly  the medium is read-only (sampled at reset): VIRTIO_BLK_F_RO offered, every OUT fails
//
// Feature bits offered are parameters; VIRTIO_F_VERSION_1 is always offered and required (modern).
`default_nettype none

module virtio_blk #(
    parameter [31:0]  VENDOR_ID    = 32'h4b544d4d,
    parameter [63:0]  HOST_BASE    = 64'h0000_0000_8000_0000,
    parameter [63:0]  HOST_SIZE    = 64'h0000_0000_0100_0000,
    parameter         F_SEG_MAX    = 1,
    parameter         F_RO         = 0,            // offer RO whatever the readonly input says
    parameter         F_BLK_SIZE   = 1,
    parameter         F_FLUSH      = 1,
    parameter         F_CONFIG_WCE = 1,            // needs F_FLUSH (virtio 1.2, 5.2.5.2)
    parameter         F_TOPOLOGY   = 1,
    parameter         F_INDIRECT   = 1,
    parameter         F_EVENT_IDX  = 1,            // VIRTIO_F_EVENT_IDX: used_event / avail_event
    parameter         LEGACY       = 0,            // 1: virtio-mmio Version 1 (legacy interface)
    parameter         WRITEBACK    = 0,            // 1: writeback after FEATURES_OK (if FLUSH negotiated)
    parameter [15:0]  QUEUE_NUM_MAX = 16'd256,
    parameter [31:0]  BLK_SIZE     = 32'd512,      // logical block
    parameter [7:0]   PHYS_BLOCK_EXP = 8'd0,       // physical block = BLK_SIZE << PHYS_BLOCK_EXP
    parameter [7:0]   ALIGN_OFFSET = 8'd0,         // topology, in logical blocks
    parameter [15:0]  MIN_IO_SIZE  = 16'd1,
    parameter [31:0]  OPT_IO_SIZE  = 32'd8,
    parameter         DTAB_AW      = 5,            // descriptors per request: 2**DTAB_AW
    parameter         CTX_AW       = 3,            // requests in flight: 2**CTX_AW (the seed: 8 workers)
    parameter         DATA_W       = 32,           // host and media data path: 32 or 64
    parameter         LINES_AW     = 3,            // write buffer: 2**LINES_AW sectors
    parameter [159:0] ID           = "mmiotk-vblk-rtl-0001"
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
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [11:0] s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,

    output wire        dma_req,
    output wire        dma_we,
    output wire [63:0] dma_addr,
    output wire [DATA_W-1:0]   dma_wdata,
    output wire [DATA_W/8-1:0] dma_wstrb,
    input  wire        dma_gnt,
    input  wire        dma_rvalid,
    input  wire [DATA_W-1:0]   dma_rdata,

    output wire        med_req,
    output wire [1:0]  med_cmd,
    output wire [47:0] med_addr,
    output wire [DATA_W-1:0] med_wdata,
    input  wire        med_gnt,
    input  wire        med_rvalid,
    input  wire [DATA_W-1:0] med_rdata,
    input  wire [(1 << CTX_AW) - 1:0] med_ready,

    input  wire [63:0] capacity,
    input  wire [63:0] media_base,
    input  wire        readonly,
    output wire        irq
);
    // header and status take one descriptor each in the usual layout
    localparam [31:0] SEG_MAX = (32'd1 << DTAB_AW) - 32'd2;

    wire        used_notify, fatal_event, dev_reset, run, notify, writeback, ro, indirect, event_idx, q_ready;
    wire [15:0] q_num;
    wire [63:0] q_desc, q_avail, q_used;

    vblk_regs #(
        .VENDOR_ID(VENDOR_ID), .QUEUE_NUM_MAX(QUEUE_NUM_MAX), .F_SEG_MAX(F_SEG_MAX), .F_RO(F_RO),
        .F_BLK_SIZE(F_BLK_SIZE), .F_FLUSH(F_FLUSH), .F_CONFIG_WCE(F_CONFIG_WCE), .F_TOPOLOGY(F_TOPOLOGY),
        .F_INDIRECT(F_INDIRECT), .F_EVENT_IDX(F_EVENT_IDX), .LEGACY(LEGACY), .WRITEBACK(WRITEBACK), .SEG_MAX(SEG_MAX),
        .BLK_SIZE(BLK_SIZE), .PHYS_BLOCK_EXP(PHYS_BLOCK_EXP), .ALIGN_OFFSET(ALIGN_OFFSET),
        .MIN_IO_SIZE(MIN_IO_SIZE), .OPT_IO_SIZE(OPT_IO_SIZE)
    ) u_regs (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .capacity(capacity), .readonly(readonly), .used_notify(used_notify), .fatal_event(fatal_event),
        .dev_reset(dev_reset), .run(run), .notify(notify), .q_num(q_num), .q_desc(q_desc),
        .q_avail(q_avail), .q_used(q_used), .writeback(writeback), .ro(ro), .indirect(indirect),
        .event_idx(event_idx), .q_ready(q_ready), .irq(irq));

    vblk_engine #(
        .HOST_BASE(HOST_BASE), .HOST_SIZE(HOST_SIZE), .QUEUE_NUM_MAX(QUEUE_NUM_MAX),
        .F_FLUSH(F_FLUSH), .BLK_SIZE(BLK_SIZE), .DTAB_AW(DTAB_AW), .LINES_AW(LINES_AW), .CTX_AW(CTX_AW),
        .DW(DATA_W), .ID(ID)
    ) u_engine (
        .clk(clk), .rst_n(rst_n), .dev_reset(dev_reset), .run(run), .notify(notify), .q_num(q_num),
        .q_desc(q_desc), .q_avail(q_avail), .q_used(q_used), .writeback(writeback),
        .ro(ro || F_RO != 0), .indirect(indirect), .event_idx(event_idx), .q_ready(q_ready),
        .capacity(capacity), .media_base(media_base),
        .used_notify(used_notify), .fatal_event(fatal_event),
        .h_req(dma_req), .h_we(dma_we), .h_addr(dma_addr), .h_wdata(dma_wdata), .h_wstrb(dma_wstrb),
        .h_gnt(dma_gnt), .h_rvalid(dma_rvalid), .h_rdata(dma_rdata),
        .m_req(med_req), .m_cmd(med_cmd), .m_addr(med_addr), .m_wdata(med_wdata), .m_gnt(med_gnt),
        .m_rvalid(med_rvalid), .m_rdata(med_rdata), .m_ready(med_ready));
endmodule

`default_nettype wire
