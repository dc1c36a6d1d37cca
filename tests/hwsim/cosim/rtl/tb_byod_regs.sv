// The top level (Verilator) of the bus-master tests: PeakRDL-regblock register blocks (tests/hwsim/cosim/rtl/
// byod_regs.rdl) behind every HDL master of hwsim/cosim/hdl, and behind top-level ports for the cocotbext
// masters (ext_*). The clock is HDL; Python drives `rst` (active high, as regblock wants) and `ev_set`
// (the EVENT.SEEN hardware set of every block). BYOD_BENCH defined leaves only the AXI4-Lite and APB4
// blocks (what benchmarks/bench_byod.py measures): a lighter design per clock.
`timescale 1ns/1ps
`default_nettype none

module tb_byod_regs;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    reg ev_set = 1'b0;

    // the HDL masters and their blocks, one level down so that their wires are not public signals
    // interrupt lines out of a register: SCRATCH2[3:0] of h.u_axil (active high), ~SCRATCH2[4] (active low)
    wire [3:0] irq_vec;
    wire       irq_n;
    byod_hdl_side h (.clk(clk), .rst(rst), .ev_set(ev_set), .irq_vec(irq_vec), .irq_n(irq_n));

    // ---- top-level ports for the cocotbext masters ---------------------------------------------------------
    reg  [4:0]  ext_axil_awaddr = 0, ext_axil_araddr = 0; reg [2:0] ext_axil_awprot = 0, ext_axil_arprot = 0;
    reg  [31:0] ext_axil_wdata = 0; reg [3:0] ext_axil_wstrb = 0;
    reg         ext_axil_awvalid = 0, ext_axil_wvalid = 0, ext_axil_bready = 0, ext_axil_arvalid = 0, ext_axil_rready = 0;
    wire        ext_axil_awready, ext_axil_wready, ext_axil_bvalid, ext_axil_arready, ext_axil_rvalid;
    wire [1:0]  ext_axil_bresp, ext_axil_rresp; wire [31:0] ext_axil_rdata;
    regs_axi4lite_pkg::byod_regs__in_t ext_axil_in;
    assign ext_axil_in.IDENT.ID.next = 32'h1e000001;
    assign ext_axil_in.EVENT.SEEN.hwset = ev_set;
    regs_axi4lite u_ext_axil (.clk(clk), .rst(rst),
        .s_axil_awready(ext_axil_awready), .s_axil_awvalid(ext_axil_awvalid), .s_axil_awaddr(ext_axil_awaddr),
        .s_axil_awprot(ext_axil_awprot), .s_axil_wready(ext_axil_wready), .s_axil_wvalid(ext_axil_wvalid),
        .s_axil_wdata(ext_axil_wdata), .s_axil_wstrb(ext_axil_wstrb), .s_axil_bready(ext_axil_bready),
        .s_axil_bvalid(ext_axil_bvalid), .s_axil_bresp(ext_axil_bresp), .s_axil_arready(ext_axil_arready),
        .s_axil_arvalid(ext_axil_arvalid), .s_axil_araddr(ext_axil_araddr), .s_axil_arprot(ext_axil_arprot),
        .s_axil_rready(ext_axil_rready), .s_axil_rvalid(ext_axil_rvalid), .s_axil_rdata(ext_axil_rdata),
        .s_axil_rresp(ext_axil_rresp), .hwif_in(ext_axil_in), .hwif_out());

    reg  [4:0]  ext_apb_paddr = 0; reg [31:0] ext_apb_pwdata = 0; reg [3:0] ext_apb_pstrb = 0; reg [2:0] ext_apb_pprot = 0;
    reg         ext_apb_psel = 0, ext_apb_penable = 0, ext_apb_pwrite = 0;
    wire [31:0] ext_apb_prdata; wire ext_apb_pready, ext_apb_pslverr;
    regs_apb4_pkg::byod_regs__in_t ext_apb_in;
    assign ext_apb_in.IDENT.ID.next = 32'h1e000002;
    assign ext_apb_in.EVENT.SEEN.hwset = ev_set;
    regs_apb4 u_ext_apb (.clk(clk), .rst(rst), .s_apb_psel(ext_apb_psel), .s_apb_penable(ext_apb_penable),
        .s_apb_pwrite(ext_apb_pwrite), .s_apb_paddr(ext_apb_paddr), .s_apb_pwdata(ext_apb_pwdata),
        .s_apb_pstrb(ext_apb_pstrb), .s_apb_pprot(ext_apb_pprot), .s_apb_pready(ext_apb_pready),
        .s_apb_prdata(ext_apb_prdata), .s_apb_pslverr(ext_apb_pslverr), .hwif_in(ext_apb_in), .hwif_out());

`ifndef BYOD_BENCH
    reg  [4:0]  ext_wb_adr = 0; reg [31:0] ext_wb_datwr = 0; reg [3:0] ext_wb_sel = 0;
    reg         ext_wb_cyc = 0, ext_wb_stb = 0, ext_wb_we = 0;
    wire [31:0] ext_wb_datrd; wire ext_wb_ack_raw, ext_wb_ack, ext_wb_err, ext_wb_stall;
    // regblock raises ACK together with ERR, which Wishbone B4 forbids (and cocotbext-wishbone rejects)
    assign ext_wb_ack = ext_wb_ack_raw && !ext_wb_err;
    regs_wishbone_pkg::byod_regs__in_t ext_wb_in;
    assign ext_wb_in.IDENT.ID.next = 32'h1e000004;
    assign ext_wb_in.EVENT.SEEN.hwset = ev_set;
    regs_wishbone u_ext_wb (.clk(clk), .rst(rst), .wb_cyc(ext_wb_cyc), .wb_stb(ext_wb_stb), .wb_we(ext_wb_we),
        .wb_stall(ext_wb_stall), .wb_adr(ext_wb_adr), .wb_odat(ext_wb_datwr), .wb_sel(ext_wb_sel),
        .wb_ack(ext_wb_ack_raw), .wb_err(ext_wb_err), .wb_idat(ext_wb_datrd), .hwif_in(ext_wb_in), .hwif_out());

    reg  [2:0]  ext_avmm_address = 0; reg [31:0] ext_avmm_writedata = 0; reg [3:0] ext_avmm_byteenable = 0;
    reg         ext_avmm_read = 0, ext_avmm_write = 0;
    wire [31:0] ext_avmm_readdata; wire [1:0] ext_avmm_response;
    wire        ext_avmm_waitrequest, ext_avmm_readdatavalid, ext_avmm_writeresponsevalid;
    regs_avalonmm_pkg::byod_regs__in_t ext_avmm_in;
    assign ext_avmm_in.IDENT.ID.next = 32'h1e000005;
    assign ext_avmm_in.EVENT.SEEN.hwset = ev_set;
    regs_avalonmm u_ext_avmm (.clk(clk), .rst(rst), .avalon_read(ext_avmm_read), .avalon_write(ext_avmm_write),
        .avalon_waitrequest(ext_avmm_waitrequest), .avalon_address(ext_avmm_address),
        .avalon_writedata(ext_avmm_writedata), .avalon_byteenable(ext_avmm_byteenable),
        .avalon_readdatavalid(ext_avmm_readdatavalid), .avalon_writeresponsevalid(ext_avmm_writeresponsevalid),
        .avalon_readdata(ext_avmm_readdata), .avalon_response(ext_avmm_response), .hwif_in(ext_avmm_in),
        .hwif_out());
`endif
endmodule

// Every HDL master of hwsim/cosim/hdl on its own regblock slave: h.m_axil, h.m_axil64, h.m_apb4,
// h.m_apb3, h.m_wb, h.m_avmm.
module byod_hdl_side (
    input  wire       clk,
    input  wire       rst,
    input  wire       ev_set,
    output wire [3:0] irq_vec,
    output wire       irq_n
);
    regs_axi4lite_pkg::byod_regs__out_t axil_out;
    assign irq_vec = axil_out.SCRATCH2.VAL.value[3:0];
    assign irq_n = !axil_out.SCRATCH2.VAL.value[4];
    wire rst_n = !rst;

    // ---- AXI4-Lite, HDL master m_axil --------------------------------------------------------------
    wire [4:0] a_awaddr, a_araddr; wire [2:0] a_awprot, a_arprot; wire [31:0] a_wdata, a_rdata;
    wire [3:0] a_wstrb; wire [1:0] a_bresp, a_rresp;
    wire a_awvalid, a_awready, a_wvalid, a_wready, a_bvalid, a_bready, a_arvalid, a_arready, a_rvalid, a_rready;
    hwsim_axil_master #(.ADDR_W(5), .DATA_W(32)) m_axil (.clk(clk), .rst_n(rst_n), .enable(1'b1), .busy(),
        .m_axil_awaddr(a_awaddr), .m_axil_awprot(a_awprot), .m_axil_awvalid(a_awvalid), .m_axil_awready(a_awready),
        .m_axil_wdata(a_wdata), .m_axil_wstrb(a_wstrb), .m_axil_wvalid(a_wvalid), .m_axil_wready(a_wready),
        .m_axil_bresp(a_bresp), .m_axil_bvalid(a_bvalid), .m_axil_bready(a_bready),
        .m_axil_araddr(a_araddr), .m_axil_arprot(a_arprot), .m_axil_arvalid(a_arvalid), .m_axil_arready(a_arready),
        .m_axil_rdata(a_rdata), .m_axil_rresp(a_rresp), .m_axil_rvalid(a_rvalid), .m_axil_rready(a_rready));
    regs_axi4lite_pkg::byod_regs__in_t regs_axi4lite_pkg_in;
    assign regs_axi4lite_pkg_in.IDENT.ID.next = 32'h1d000001;
    assign regs_axi4lite_pkg_in.EVENT.SEEN.hwset = ev_set;
    regs_axi4lite u_axil (.clk(clk), .rst(rst),
        .s_axil_awready(a_awready), .s_axil_awvalid(a_awvalid), .s_axil_awaddr(a_awaddr), .s_axil_awprot(a_awprot),
        .s_axil_wready(a_wready), .s_axil_wvalid(a_wvalid), .s_axil_wdata(a_wdata), .s_axil_wstrb(a_wstrb),
        .s_axil_bready(a_bready), .s_axil_bvalid(a_bvalid), .s_axil_bresp(a_bresp),
        .s_axil_arready(a_arready), .s_axil_arvalid(a_arvalid), .s_axil_araddr(a_araddr), .s_axil_arprot(a_arprot),
        .s_axil_rready(a_rready), .s_axil_rvalid(a_rvalid), .s_axil_rdata(a_rdata), .s_axil_rresp(a_rresp),
        .hwif_in(regs_axi4lite_pkg_in), .hwif_out(axil_out));
`ifndef BYOD_BENCH

    // ---- AXI4-Lite 64-bit, HDL master m_axil64 ------------------------------------------------------
    wire [3:0] w_awaddr, w_araddr; wire [2:0] w_awprot, w_arprot; wire [63:0] w_wdata, w_rdata;
    wire [7:0] w_wstrb; wire [1:0] w_bresp, w_rresp;
    wire w_awvalid, w_awready, w_wvalid, w_wready, w_bvalid, w_bready, w_arvalid, w_arready, w_rvalid, w_rready;
    hwsim_axil_master #(.ADDR_W(4), .DATA_W(64)) m_axil64 (.clk(clk), .rst_n(rst_n), .enable(1'b1), .busy(),
        .m_axil_awaddr(w_awaddr), .m_axil_awprot(w_awprot), .m_axil_awvalid(w_awvalid), .m_axil_awready(w_awready),
        .m_axil_wdata(w_wdata), .m_axil_wstrb(w_wstrb), .m_axil_wvalid(w_wvalid), .m_axil_wready(w_wready),
        .m_axil_bresp(w_bresp), .m_axil_bvalid(w_bvalid), .m_axil_bready(w_bready),
        .m_axil_araddr(w_araddr), .m_axil_arprot(w_arprot), .m_axil_arvalid(w_arvalid), .m_axil_arready(w_arready),
        .m_axil_rdata(w_rdata), .m_axil_rresp(w_rresp), .m_axil_rvalid(w_rvalid), .m_axil_rready(w_rready));
    regs64_axi4lite_pkg::byod_regs64__in_t regs64_in;
    assign regs64_in.IDENT.ID.next = 64'h0123_4567_89ab_cdef;
    regs64_axi4lite u_axil64 (.clk(clk), .rst(rst),
        .s_axil_awready(w_awready), .s_axil_awvalid(w_awvalid), .s_axil_awaddr(w_awaddr), .s_axil_awprot(w_awprot),
        .s_axil_wready(w_wready), .s_axil_wvalid(w_wvalid), .s_axil_wdata(w_wdata), .s_axil_wstrb(w_wstrb),
        .s_axil_bready(w_bready), .s_axil_bvalid(w_bvalid), .s_axil_bresp(w_bresp),
        .s_axil_arready(w_arready), .s_axil_arvalid(w_arvalid), .s_axil_araddr(w_araddr), .s_axil_arprot(w_arprot),
        .s_axil_rready(w_rready), .s_axil_rvalid(w_rvalid), .s_axil_rdata(w_rdata), .s_axil_rresp(w_rresp),
        .hwif_in(regs64_in), .hwif_out());
`endif

    // ---- APB4, HDL master m_apb4 ---------------------------------------------------------------
    wire [4:0] apb4_paddr; wire [31:0] apb4_pwdata, apb4_prdata; wire [3:0] apb4_pstrb; wire [2:0] apb4_pprot;
    wire apb4_psel, apb4_penable, apb4_pwrite, apb4_pready, apb4_pslverr;
    hwsim_apb_master #(.ADDR_W(5), .DATA_W(32)) m_apb4 (.clk(clk), .rst_n(rst_n),
        .m_apb_psel(apb4_psel), .m_apb_penable(apb4_penable), .m_apb_paddr(apb4_paddr),
        .m_apb_pwrite(apb4_pwrite), .m_apb_pwdata(apb4_pwdata), .m_apb_pstrb(apb4_pstrb),
        .m_apb_pprot(apb4_pprot), .m_apb_prdata(apb4_prdata), .m_apb_pready(apb4_pready),
        .m_apb_pslverr(apb4_pslverr));
    regs_apb4_pkg::byod_regs__in_t regs_apb4_pkg_in;
    assign regs_apb4_pkg_in.IDENT.ID.next = 32'h1d000002;
    assign regs_apb4_pkg_in.EVENT.SEEN.hwset = ev_set;
    regs_apb4 u_apb4 (.clk(clk), .rst(rst), .s_apb_psel(apb4_psel), .s_apb_penable(apb4_penable),
        .s_apb_pwrite(apb4_pwrite), .s_apb_paddr(apb4_paddr), .s_apb_pwdata(apb4_pwdata), .s_apb_pstrb(apb4_pstrb), .s_apb_pprot(apb4_pprot),
        .s_apb_pready(apb4_pready), .s_apb_prdata(apb4_prdata), .s_apb_pslverr(apb4_pslverr),
        .hwif_in(regs_apb4_pkg_in), .hwif_out());
`ifndef BYOD_BENCH

    // ---- APB3, HDL master m_apb3 ---------------------------------------------------------------
    wire [4:0] apb3_paddr; wire [31:0] apb3_pwdata, apb3_prdata; wire [3:0] apb3_pstrb; wire [2:0] apb3_pprot;
    wire apb3_psel, apb3_penable, apb3_pwrite, apb3_pready, apb3_pslverr;
    hwsim_apb_master #(.ADDR_W(5), .DATA_W(32)) m_apb3 (.clk(clk), .rst_n(rst_n),
        .m_apb_psel(apb3_psel), .m_apb_penable(apb3_penable), .m_apb_paddr(apb3_paddr),
        .m_apb_pwrite(apb3_pwrite), .m_apb_pwdata(apb3_pwdata), .m_apb_pstrb(apb3_pstrb),
        .m_apb_pprot(apb3_pprot), .m_apb_prdata(apb3_prdata), .m_apb_pready(apb3_pready),
        .m_apb_pslverr(apb3_pslverr));
    regs_apb3_pkg::byod_regs__in_t regs_apb3_pkg_in;
    assign regs_apb3_pkg_in.IDENT.ID.next = 32'h1d000003;
    assign regs_apb3_pkg_in.EVENT.SEEN.hwset = ev_set;
    regs_apb3 u_apb3 (.clk(clk), .rst(rst), .s_apb_psel(apb3_psel), .s_apb_penable(apb3_penable),
        .s_apb_pwrite(apb3_pwrite), .s_apb_paddr(apb3_paddr), .s_apb_pwdata(apb3_pwdata), 
        .s_apb_pready(apb3_pready), .s_apb_prdata(apb3_prdata), .s_apb_pslverr(apb3_pslverr),
        .hwif_in(regs_apb3_pkg_in), .hwif_out());

    // ---- Wishbone B4 pipelined, HDL master m_wb ---------------------------------------------------------
    wire [4:0] wb_adr; wire [31:0] wb_dat_o, wb_dat_i; wire [3:0] wb_sel;
    wire wb_cyc, wb_stb, wb_we, wb_ack, wb_err, wb_stall;
    hwsim_wb_master #(.ADDR_W(5), .DATA_W(32), .PIPELINED(1)) m_wb (.clk(clk), .rst_n(rst_n),
        .m_wb_cyc(wb_cyc), .m_wb_stb(wb_stb), .m_wb_we(wb_we), .m_wb_adr(wb_adr), .m_wb_dat_o(wb_dat_o),
        .m_wb_sel(wb_sel), .m_wb_dat_i(wb_dat_i), .m_wb_ack(wb_ack), .m_wb_err(wb_err), .m_wb_rty(1'b0),
        .m_wb_stall(wb_stall));
    regs_wishbone_pkg::byod_regs__in_t regs_wishbone_pkg_in;
    assign regs_wishbone_pkg_in.IDENT.ID.next = 32'h1d000004;
    assign regs_wishbone_pkg_in.EVENT.SEEN.hwset = ev_set;
    regs_wishbone u_wb (.clk(clk), .rst(rst), .wb_cyc(wb_cyc), .wb_stb(wb_stb), .wb_we(wb_we),
        .wb_stall(wb_stall), .wb_adr(wb_adr), .wb_odat(wb_dat_o), .wb_sel(wb_sel), .wb_ack(wb_ack),
        .wb_err(wb_err), .wb_idat(wb_dat_i), .hwif_in(regs_wishbone_pkg_in), .hwif_out());

    // ---- Avalon-MM, HDL master m_avmm (word addresses) ----------------------------------------------------
    wire [2:0] av_address; wire [31:0] av_writedata, av_readdata; wire [3:0] av_byteenable; wire [1:0] av_response;
    wire av_read, av_write, av_waitrequest, av_readdatavalid, av_writeresponsevalid;
    hwsim_avmm_master #(.ADDR_W(3), .DATA_W(32)) m_avmm (.clk(clk), .rst_n(rst_n),
        .m_avmm_address(av_address), .m_avmm_read(av_read), .m_avmm_write(av_write),
        .m_avmm_writedata(av_writedata), .m_avmm_byteenable(av_byteenable), .m_avmm_readdata(av_readdata),
        .m_avmm_waitrequest(av_waitrequest), .m_avmm_readdatavalid(av_readdatavalid),
        .m_avmm_response(av_response), .m_avmm_writeresponsevalid(av_writeresponsevalid));
    regs_avalonmm_pkg::byod_regs__in_t regs_avalonmm_pkg_in;
    assign regs_avalonmm_pkg_in.IDENT.ID.next = 32'h1d000005;
    assign regs_avalonmm_pkg_in.EVENT.SEEN.hwset = ev_set;
    regs_avalonmm u_avmm (.clk(clk), .rst(rst), .avalon_read(av_read), .avalon_write(av_write),
        .avalon_waitrequest(av_waitrequest), .avalon_address(av_address), .avalon_writedata(av_writedata),
        .avalon_byteenable(av_byteenable), .avalon_readdatavalid(av_readdatavalid),
        .avalon_writeresponsevalid(av_writeresponsevalid), .avalon_readdata(av_readdata),
        .avalon_response(av_response), .hwif_in(regs_avalonmm_pkg_in), .hwif_out());
`endif

endmodule

`default_nettype wire
