// Simulation harness around virtio_blk (not synthesizable): memory models and a bus transactor.
//
//  * Host RAM and media are served by hwsim_shm (DPI-C under Verilator, VPI under Icarus): the bytes
//    live in the Python process's own mmaps, so DMA needs no Python call at all.
//  * The AXI4-Lite master is the generic HDL transactor hwsim_axil_master (hwsim/cosim/hdl), instance
//    `m`: software writes its command registers and flips m.cmd_tgl, it flips m.rsp_tgl when the
//    response is in (one software wait per bus transaction, one clock per transaction here).
//  * bus_sel = 1 hands the slave port to an external master on ext_axil_* (a Python bus model).
//  * stall != 0 withholds dma_gnt/med_gnt on about stall/256 of cycles (pseudo-random), to exercise
//    the controller's back-pressure handling; stall = 255 withholds them for good (host memory and media
//    stop answering: the device stalls mid-request while its registers still answer).
//  * media latency: a prepared request (med_cmd 3) is ready med_latency + med_latency_step * (its first
//    sector mod 256) cycles later (med_ready[tag]); several count down at once, so requests the
//    controller has in flight finish in the media's order, not the driver's.
//  * REG_KNOBS = 1 (the cocotb top level) takes capacity, media_base, readonly and stall at each rising
//    edge instead of using them as they are. Under Verilator a signal that VPI may write at any time is an
//    input whose whole combinational cone (here the DMA and media grants into the copy engine, the range
//    check, the media address) is evaluated again in every time slot, clock edge or not; behind a
//    register that cone is evaluated only when its flops change, as in the pure-Verilog bench, whose
//    knobs are ordinary variables. A knob written from Python then takes effect one clock later, which
//    no user of these knobs can tell: they are set between bus transactions, each several clocks long.
`timescale 1ns/1ps
`default_nettype none

module tb_harness #(
    parameter [63:0] HOST_BASE    = 64'h0000_0000_8000_0000,
    parameter [63:0] HOST_SIZE    = 64'h0000_0000_0100_0000,
    parameter        F_RO         = 0,
    parameter        F_FLUSH      = 1,
    parameter        F_CONFIG_WCE = 1,
    parameter        LEGACY       = 0,
    parameter        WRITEBACK    = 0,
    parameter [31:0] BLK_SIZE     = 32'd512,
    parameter [7:0]  PHYS_BLOCK_EXP = 8'd3,
    parameter        DATA_W       = 32,
    parameter        REG_KNOBS    = 0
) (
    input  wire        clk,
    input  wire        rst_n,

    input  wire        bus_sel,
    input  wire [11:0] ext_axil_awaddr,
    input  wire        ext_axil_awvalid,
    output wire        ext_axil_awready,
    input  wire [31:0] ext_axil_wdata,
    input  wire [3:0]  ext_axil_wstrb,
    input  wire        ext_axil_wvalid,
    output wire        ext_axil_wready,
    output wire [1:0]  ext_axil_bresp,
    output wire        ext_axil_bvalid,
    input  wire        ext_axil_bready,
    input  wire [11:0] ext_axil_araddr,
    input  wire        ext_axil_arvalid,
    output wire        ext_axil_arready,
    output wire [31:0] ext_axil_rdata,
    output wire [1:0]  ext_axil_rresp,
    output wire        ext_axil_rvalid,
    input  wire        ext_axil_rready,

    input  wire [63:0] capacity,
    input  wire [63:0] media_base,
    input  wire        readonly,
    input  wire [7:0]  stall,
    input  wire [15:0] med_latency,
    input  wire [15:0] med_latency_step,
    output wire        irq
);
`ifdef VERILATOR
    import "DPI-C" function int hwsim_dpi_read(input int space, input longint addr);
    import "DPI-C" function void hwsim_dpi_write(input int space, input longint addr, input int data,
                                                 input int strb);
    import "DPI-C" function void hwsim_dpi_sync(input int space);
`define SHM_READ(s, a)           hwsim_dpi_read(s, a)
`define SHM_WRITE(s, a, d, strb) hwsim_dpi_write(s, a, d, strb)
`define SHM_SYNC(s)              hwsim_dpi_sync(s)
`else
`define SHM_READ(s, a)           $hwsim_read(s, a)
`define SHM_WRITE(s, a, d, strb) $hwsim_write(s, a, d, strb)
`define SHM_SYNC(s)              $hwsim_sync(s)
`endif

    // ---- the knobs (REG_KNOBS: one flop each, see above) -------------------------------------------
    wire [63:0] capacity_k, media_base_k;
    wire        readonly_k;
    wire [7:0]  stall_k;
    generate
        if (REG_KNOBS != 0) begin : g_knobs
            reg [63:0] capacity_q = 64'd0, media_base_q = 64'd0;
            reg        readonly_q = 1'b0;
            reg [7:0]  stall_q = 8'd0;
            always @(posedge clk) begin
                capacity_q   <= capacity;
                media_base_q <= media_base;
                readonly_q   <= readonly;
                stall_q      <= stall;
            end
            assign capacity_k = capacity_q, media_base_k = media_base_q, readonly_k = readonly_q,
                   stall_k = stall_q;
        end else begin : g_knobs
            assign capacity_k = capacity, media_base_k = media_base, readonly_k = readonly, stall_k = stall;
        end
    endgenerate

    // ---- the device --------------------------------------------------------------------------------
    wire [11:0] awaddr, araddr;
    wire [31:0] wdata, rdata;
    wire [3:0]  wstrb;
    wire        awvalid, awready, wvalid, wready, bvalid, bready, arvalid, arready, rvalid, rready;
    wire [1:0]  bresp, rresp;

    wire        dma_req, dma_we, dma_gnt, med_req, med_gnt;
    wire [63:0] dma_addr;
    wire [DATA_W-1:0]   dma_wdata, med_wdata;
    wire [DATA_W/8-1:0] dma_wstrb;
    wire [1:0]  med_cmd;
    wire [47:0] med_addr;
    reg         dma_rvalid, med_rvalid;
    reg  [7:0]  med_ready;
    reg  [23:0] med_wait [0:7];
    reg  [7:0]  med_counting;      // which med_wait run (the loop below runs only then: simulation speed)
    reg  [DATA_W-1:0] dma_rdata, med_rdata;

    virtio_blk #(.HOST_BASE(HOST_BASE), .HOST_SIZE(HOST_SIZE), .F_RO(F_RO), .F_FLUSH(F_FLUSH),
                 .F_CONFIG_WCE(F_CONFIG_WCE), .LEGACY(LEGACY), .WRITEBACK(WRITEBACK), .BLK_SIZE(BLK_SIZE),
                 .PHYS_BLOCK_EXP(PHYS_BLOCK_EXP), .DATA_W(DATA_W)) dut (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(awaddr), .s_axil_awvalid(awvalid), .s_axil_awready(awready),
        .s_axil_wdata(wdata), .s_axil_wstrb(wstrb), .s_axil_wvalid(wvalid), .s_axil_wready(wready),
        .s_axil_bresp(bresp), .s_axil_bvalid(bvalid), .s_axil_bready(bready),
        .s_axil_araddr(araddr), .s_axil_arvalid(arvalid), .s_axil_arready(arready),
        .s_axil_rdata(rdata), .s_axil_rresp(rresp), .s_axil_rvalid(rvalid), .s_axil_rready(rready),
        .dma_req(dma_req), .dma_we(dma_we), .dma_addr(dma_addr), .dma_wdata(dma_wdata),
        .dma_wstrb(dma_wstrb), .dma_gnt(dma_gnt), .dma_rvalid(dma_rvalid), .dma_rdata(dma_rdata),
        .med_req(med_req), .med_cmd(med_cmd), .med_addr(med_addr), .med_wdata(med_wdata),
        .med_gnt(med_gnt), .med_rvalid(med_rvalid), .med_rdata(med_rdata), .med_ready(med_ready),
        .capacity(capacity_k), .media_base(media_base_k), .readonly(readonly_k), .irq(irq));
    wire unused_med = &{1'b0, med_wdata[DATA_W-1:3]};

    // ---- memory models -----------------------------------------------------------------------------
    reg [15:0] lfsr;
    always @(posedge clk)
        lfsr <= (!rst_n || lfsr == 16'd0) ? 16'hace1 : {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};
    assign dma_gnt = (stall_k == 8'd0) || (stall_k != 8'hff && lfsr[7:0] >= stall_k);
    assign med_gnt = (stall_k == 8'd0) || (stall_k != 8'hff && lfsr[15:8] >= stall_k);

    integer t;
    always @(posedge clk) begin
        if (med_ready != 8'd0)
            med_ready <= 8'd0;
        if (!rst_n)
            med_counting <= 8'd0;
        else if (med_counting != 8'd0)
            for (t = 0; t < 8; t = t + 1)
                if (med_counting[t]) begin
                    if (med_wait[t] <= 24'd1) begin
                        med_ready[t]    <= 1'b1;
                        med_counting[t] <= 1'b0;
                    end else
                        med_wait[t] <= med_wait[t] - 24'd1;
                end
        if (rst_n && med_req && med_gnt && med_cmd == 2'd3) begin
            med_wait[med_wdata[2:0]] <= {8'd0, med_latency} + {8'd0, med_latency_step} * {16'd0, med_addr[7:0]};
            med_counting[med_wdata[2:0]] <= 1'b1;
        end
    end

    integer u;
    wire [63:0] med_byte = {16'd0, med_addr} << ((DATA_W == 64) ? 3 : 2);
    always @(posedge clk) begin
        dma_rvalid <= 1'b0;
        med_rvalid <= 1'b0;
        // a DATA_W-bit access is DATA_W / 32 word accesses of the shared memory
        if (rst_n && dma_req && dma_gnt) begin
            for (u = 0; u < DATA_W / 32; u = u + 1)
                if (dma_we) begin
                    if (dma_wstrb[4*u +: 4] != 4'd0)
                        `SHM_WRITE(0, dma_addr + 4 * u, dma_wdata[32*u +: 32], {28'd0, dma_wstrb[4*u +: 4]});
                end else
                    dma_rdata[32*u +: 32] <= `SHM_READ(0, dma_addr + 4 * u);
            dma_rvalid <= !dma_we;
        end
        if (rst_n && med_req && med_gnt) begin
            case (med_cmd)
            2'd0: begin
                for (u = 0; u < DATA_W / 32; u = u + 1)
                    med_rdata[32*u +: 32] <= `SHM_READ(1, med_byte + 4 * u);
                med_rvalid <= 1'b1;
            end
            2'd1:
                for (u = 0; u < DATA_W / 32; u = u + 1)
                    `SHM_WRITE(1, med_byte + 4 * u, med_wdata[32*u +: 32], 32'hf);
            2'd3: ;  // prepare: see the latency model above
            default: begin
                `SHM_SYNC(1);
                med_rvalid <= 1'b1;
            end
            endcase
        end
    end

    // ---- HDL AXI4-Lite master (hwsim_axil_master), or the external master on ext_axil_* -----------
    wire [11:0] m_awaddr, m_araddr;
    wire [31:0] m_wdata;
    wire [3:0]  m_wstrb;
    wire [2:0]  m_awprot, m_arprot;
    wire        m_awvalid, m_wvalid, m_arvalid, m_bready, m_rready;
    wire        m_busy;   // a command of ours is pending or its response not yet consumed (even if the
                          // port has been given to the external master meanwhile)

    hwsim_axil_master #(.ADDR_W(12), .DATA_W(32)) m (
        .clk(clk), .rst_n(rst_n), .enable(!bus_sel), .busy(m_busy),
        .m_axil_awaddr(m_awaddr), .m_axil_awprot(m_awprot), .m_axil_awvalid(m_awvalid),
        .m_axil_awready(awready), .m_axil_wdata(m_wdata), .m_axil_wstrb(m_wstrb),
        .m_axil_wvalid(m_wvalid), .m_axil_wready(wready), .m_axil_bresp(bresp),
        .m_axil_bvalid(bvalid), .m_axil_bready(m_bready), .m_axil_araddr(m_araddr),
        .m_axil_arprot(m_arprot), .m_axil_arvalid(m_arvalid), .m_axil_arready(arready),
        .m_axil_rdata(rdata), .m_axil_rresp(rresp), .m_axil_rvalid(rvalid), .m_axil_rready(m_rready));

    assign awaddr  = bus_sel ? ext_axil_awaddr  : m_awaddr;
    assign awvalid = bus_sel ? ext_axil_awvalid : m_awvalid;
    assign wdata   = bus_sel ? ext_axil_wdata   : m_wdata;
    assign wstrb   = bus_sel ? ext_axil_wstrb   : m_wstrb;
    assign wvalid  = bus_sel ? ext_axil_wvalid  : m_wvalid;
    wire   ext     = bus_sel && !m_busy;
    assign bready  = ext ? ext_axil_bready  : m_bready;
    assign araddr  = bus_sel ? ext_axil_araddr  : m_araddr;
    assign arvalid = bus_sel ? ext_axil_arvalid : m_arvalid;
    assign rready  = ext ? ext_axil_rready  : m_rready;

    assign ext_axil_awready = bus_sel && awready;
    assign ext_axil_wready  = bus_sel && wready;
    assign ext_axil_bresp   = bresp;
    assign ext_axil_bvalid  = ext && bvalid;
    assign ext_axil_arready = bus_sel && arready;
    assign ext_axil_rdata   = rdata;
    assign ext_axil_rresp   = rresp;
    assign ext_axil_rvalid  = ext && rvalid;

    wire unused_ok = &{1'b0, m_awprot, m_arprot};
endmodule

`default_nettype wire
