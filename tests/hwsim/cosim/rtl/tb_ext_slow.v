// The cocotbext adapters' bench (plain Verilog: Icarus and Verilator): the slow slaves of tb_slow.v on
// top-level ports (ext_*) that cocotbext-axi, cocotbext-apb, cocotbext-wishbone and cocotbext-avalon drive.
// HDL clock; Python drives `rst` (active high) and `wait_states`.
`timescale 1ns/1ps
`default_nettype none

module tb_ext_slow;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    reg [7:0] wait_states = 8'd3;

    reg  [5:0]  ext_axil_awaddr = 0, ext_axil_araddr = 0; reg [2:0] ext_axil_awprot = 0, ext_axil_arprot = 0;
    reg  [31:0] ext_axil_wdata = 0; reg [3:0] ext_axil_wstrb = 0;
    reg         ext_axil_awvalid = 0, ext_axil_wvalid = 0, ext_axil_bready = 0, ext_axil_arvalid = 0;
    reg         ext_axil_rready = 0;
    wire        ext_axil_awready, ext_axil_wready, ext_axil_bvalid, ext_axil_arready, ext_axil_rvalid;
    wire [1:0]  ext_axil_bresp, ext_axil_rresp; wire [31:0] ext_axil_rdata;
    slow_axil_slave #(.DATA_W(32)) s_axil (.clk(clk), .rst(rst), .wait_states(wait_states),
        .awaddr(ext_axil_awaddr), .awvalid(ext_axil_awvalid), .awready(ext_axil_awready),
        .wdata(ext_axil_wdata), .wstrb(ext_axil_wstrb), .wvalid(ext_axil_wvalid), .wready(ext_axil_wready),
        .bresp(ext_axil_bresp), .bvalid(ext_axil_bvalid), .bready(ext_axil_bready), .araddr(ext_axil_araddr),
        .arvalid(ext_axil_arvalid), .arready(ext_axil_arready), .rdata(ext_axil_rdata), .rresp(ext_axil_rresp),
        .rvalid(ext_axil_rvalid), .rready(ext_axil_rready));

    reg  [5:0]  ext_apb_paddr = 0; reg [31:0] ext_apb_pwdata = 0; reg [3:0] ext_apb_pstrb = 0;
    reg  [2:0]  ext_apb_pprot = 0;
    reg         ext_apb_psel = 0, ext_apb_penable = 0, ext_apb_pwrite = 0;
    wire [31:0] ext_apb_prdata; wire ext_apb_pready, ext_apb_pslverr;
    slow_apb_slave s_apb (.clk(clk), .rst(rst), .wait_states(wait_states), .psel(ext_apb_psel),
        .penable(ext_apb_penable), .paddr(ext_apb_paddr), .pwrite(ext_apb_pwrite), .pwdata(ext_apb_pwdata),
        .pstrb(ext_apb_pstrb), .prdata(ext_apb_prdata), .pready(ext_apb_pready), .pslverr(ext_apb_pslverr));

    reg  [5:0]  ext_wb_adr = 0; reg [31:0] ext_wb_datwr = 0; reg [3:0] ext_wb_sel = 0;
    reg         ext_wb_cyc = 0, ext_wb_stb = 0, ext_wb_we = 0;
    wire [31:0] ext_wb_datrd; wire ext_wb_ack, ext_wb_err, ext_wb_rty;
    slow_wb_classic_slave s_wb (.clk(clk), .rst(rst), .wait_states(wait_states), .cyc(ext_wb_cyc),
        .stb(ext_wb_stb), .we(ext_wb_we), .adr(ext_wb_adr), .dat_i(ext_wb_datwr), .sel(ext_wb_sel),
        .dat_o(ext_wb_datrd), .ack(ext_wb_ack), .err(ext_wb_err), .rty(ext_wb_rty));

    reg  [5:0]  ext_avmm_address = 0; reg [31:0] ext_avmm_writedata = 0; reg [3:0] ext_avmm_byteenable = 0;
    reg         ext_avmm_read = 0, ext_avmm_write = 0;
    wire [31:0] ext_avmm_readdata; wire [1:0] ext_avmm_response;
    wire        ext_avmm_waitrequest, ext_avmm_readdatavalid, ext_avmm_writeresponsevalid;
    slow_avmm_slave s_avmm (.clk(clk), .rst(rst), .wait_states(wait_states), .address(ext_avmm_address),
        .read(ext_avmm_read), .write(ext_avmm_write), .writedata(ext_avmm_writedata),
        .byteenable(ext_avmm_byteenable), .readdata(ext_avmm_readdata), .waitrequest(ext_avmm_waitrequest),
        .readdatavalid(ext_avmm_readdatavalid), .response(ext_avmm_response),
        .writeresponsevalid(ext_avmm_writeresponsevalid));
endmodule

`default_nettype wire
