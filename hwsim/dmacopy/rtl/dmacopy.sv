// dmacopy: a small DMA copy engine with a 64-bit AXI4 master port and PeakRDL-regblock registers
// (dmacopy_regs.rdl) on an AXI4-Lite slave port. A copy moves LEN bytes from SRC to DST in INCR bursts
// of up to 16 beats of 8 bytes (never across a 4 KiB boundary): read a burst into a buffer, write it
// out, repeat. An error response or a request that is not 8-byte aligned ends the copy with
// STATUS.ERR; STATUS.DONE is set at the end either way, and irq = DONE && CTRL.IRQ_EN.
`timescale 1ns/1ps
`default_nettype none

module dmacopy (
    input  wire        clk,
    input  wire        rst,

    output logic       s_axil_awready,
    input  wire        s_axil_awvalid,
    input  wire [5:0]  s_axil_awaddr,
    input  wire [2:0]  s_axil_awprot,
    output logic       s_axil_wready,
    input  wire        s_axil_wvalid,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_bready,
    output logic       s_axil_bvalid,
    output logic [1:0] s_axil_bresp,
    output logic       s_axil_arready,
    input  wire        s_axil_arvalid,
    input  wire [5:0]  s_axil_araddr,
    input  wire [2:0]  s_axil_arprot,
    input  wire        s_axil_rready,
    output logic       s_axil_rvalid,
    output logic [31:0] s_axil_rdata,
    output logic [1:0] s_axil_rresp,

    output logic [3:0]  m_axi_awid,
    output logic [63:0] m_axi_awaddr,
    output logic [7:0]  m_axi_awlen,
    output logic [2:0]  m_axi_awsize,
    output logic [1:0]  m_axi_awburst,
    output logic        m_axi_awvalid,
    input  wire         m_axi_awready,
    output logic [63:0] m_axi_wdata,
    output logic [7:0]  m_axi_wstrb,
    output logic        m_axi_wlast,
    output logic        m_axi_wvalid,
    input  wire         m_axi_wready,
    input  wire [3:0]   m_axi_bid,
    input  wire [1:0]   m_axi_bresp,
    input  wire         m_axi_bvalid,
    output logic        m_axi_bready,
    output logic [3:0]  m_axi_arid,
    output logic [63:0] m_axi_araddr,
    output logic [7:0]  m_axi_arlen,
    output logic [2:0]  m_axi_arsize,
    output logic [1:0]  m_axi_arburst,
    output logic        m_axi_arvalid,
    input  wire         m_axi_arready,
    input  wire [3:0]   m_axi_rid,
    input  wire [63:0]  m_axi_rdata,
    input  wire [1:0]   m_axi_rresp,
    input  wire         m_axi_rlast,
    input  wire         m_axi_rvalid,
    output logic        m_axi_rready,

    output logic        irq
);
    dmacopy_regs_pkg::dmacopy_regs__in_t  hwif_in;
    dmacopy_regs_pkg::dmacopy_regs__out_t hwif_out;

    dmacopy_regs regs (.clk(clk), .rst(rst),
        .s_axil_awready(s_axil_awready), .s_axil_awvalid(s_axil_awvalid), .s_axil_awaddr(s_axil_awaddr),
        .s_axil_awprot(s_axil_awprot), .s_axil_wready(s_axil_wready), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_bready(s_axil_bready),
        .s_axil_bvalid(s_axil_bvalid), .s_axil_bresp(s_axil_bresp), .s_axil_arready(s_axil_arready),
        .s_axil_arvalid(s_axil_arvalid), .s_axil_araddr(s_axil_araddr), .s_axil_arprot(s_axil_arprot),
        .s_axil_rready(s_axil_rready), .s_axil_rvalid(s_axil_rvalid), .s_axil_rdata(s_axil_rdata),
        .s_axil_rresp(s_axil_rresp), .hwif_in(hwif_in), .hwif_out(hwif_out));

    typedef enum logic [2:0] {IDLE, RD_ADDR, RD_DATA, WR_ADDR, WR_DATA, WR_RESP, FINISH} state_t;
    state_t     state;
    logic [63:0] src, dst;
    logic [31:0] left;
    logic [4:0]  beats, beat;
    logic        err, done_pulse, err_pulse;
    logic [63:0] buffer [16];

    // beats of the next burst: at most 16, what is left, and nothing across a 4 KiB boundary
    function automatic logic [4:0] burst_beats(input logic [63:0] s, input logic [63:0] d, input logic [31:0] n);
        logic [9:0] to_s, to_d, b;
        to_s = 10'd512 - {1'b0, s[11:3]};
        to_d = 10'd512 - {1'b0, d[11:3]};
        b = 10'd16;
        if (to_s < b) b = to_s;
        if (to_d < b) b = to_d;
        if ({22'd0, b} > n[31:3]) b = n[12:3];
        return b[4:0];
    endfunction

    assign hwif_in.IDENT.ID.next = 32'h444d_4131;            // "DMA1"
    assign hwif_in.STATUS.BUSY.next = (state != IDLE);
    assign hwif_in.STATUS.DONE.hwset = done_pulse;
    assign hwif_in.STATUS.ERR.hwset = err_pulse;
    assign irq = hwif_out.STATUS.DONE.value && hwif_out.CTRL.IRQ_EN.value;

    assign m_axi_arid = 4'd1;
    assign m_axi_awid = 4'd2;
    assign m_axi_araddr = src;
    assign m_axi_awaddr = dst;
    assign m_axi_arlen = {3'd0, beats} - 8'd1;
    assign m_axi_awlen = {3'd0, beats} - 8'd1;
    assign m_axi_arsize = 3'd3;
    assign m_axi_awsize = 3'd3;
    assign m_axi_arburst = 2'd1;
    assign m_axi_awburst = 2'd1;
    assign m_axi_arvalid = (state == RD_ADDR);
    assign m_axi_awvalid = (state == WR_ADDR);
    assign m_axi_rready = (state == RD_DATA);
    assign m_axi_wvalid = (state == WR_DATA);
    assign m_axi_wdata = buffer[beat[3:0]];
    assign m_axi_wstrb = 8'hff;
    assign m_axi_wlast = (beat == beats - 5'd1);
    assign m_axi_bready = (state == WR_RESP);

    always_ff @(posedge clk) begin
        done_pulse <= 1'b0;
        err_pulse <= 1'b0;
        if (rst) begin
            state <= IDLE;
        end else begin
            case (state)
            IDLE: if (hwif_out.CMD.GO.value) begin
                src  <= {hwif_out.SRC_HI.ADDR.value, hwif_out.SRC_LO.ADDR.value};
                dst  <= {hwif_out.DST_HI.ADDR.value, hwif_out.DST_LO.ADDR.value};
                left <= hwif_out.LEN.BYTES.value;
                err  <= 1'b0;
                if (hwif_out.SRC_LO.ADDR.value[2:0] != 3'd0 || hwif_out.DST_LO.ADDR.value[2:0] != 3'd0
                    || hwif_out.LEN.BYTES.value[2:0] != 3'd0) begin
                    err <= 1'b1;
                    state <= FINISH;
                end else if (hwif_out.LEN.BYTES.value == 32'd0)
                    state <= FINISH;
                else begin
                    beats <= burst_beats({hwif_out.SRC_HI.ADDR.value, hwif_out.SRC_LO.ADDR.value},
                                         {hwif_out.DST_HI.ADDR.value, hwif_out.DST_LO.ADDR.value},
                                         hwif_out.LEN.BYTES.value);
                    state <= RD_ADDR;
                end
            end
            RD_ADDR: if (m_axi_arready) begin
                beat <= 5'd0;
                state <= RD_DATA;
            end
            RD_DATA: if (m_axi_rvalid) begin
                buffer[beat[3:0]] <= m_axi_rdata;
                if (m_axi_rresp[1]) err <= 1'b1;
                beat <= beat + 5'd1;
                if (m_axi_rlast) state <= (err || m_axi_rresp[1]) ? FINISH : WR_ADDR;   // nothing bad is written
            end
            WR_ADDR: if (m_axi_awready) begin
                beat <= 5'd0;
                state <= WR_DATA;
            end
            WR_DATA: if (m_axi_wready) begin
                beat <= beat + 5'd1;
                if (m_axi_wlast) state <= WR_RESP;
            end
            WR_RESP: if (m_axi_bvalid) begin
                if (m_axi_bresp[1] || err) begin
                    err <= 1'b1;
                    state <= FINISH;
                end else if (left == {24'd0, beats, 3'd0})
                    state <= FINISH;
                else begin
                    src  <= src + {56'd0, beats, 3'd0};
                    dst  <= dst + {56'd0, beats, 3'd0};
                    left <= left - {24'd0, beats, 3'd0};
                    beats <= burst_beats(src + {56'd0, beats, 3'd0}, dst + {56'd0, beats, 3'd0},
                                         left - {24'd0, beats, 3'd0});
                    state <= RD_ADDR;
                end
            end
            FINISH: begin
                done_pulse <= 1'b1;
                err_pulse <= err;
                state <= IDLE;
            end
            default: state <= IDLE;
            endcase
        end
    end

    wire unused_ok = &{1'b0, m_axi_bid, m_axi_rid, m_axi_rresp[0], m_axi_bresp[0]};
endmodule

`default_nettype wire
