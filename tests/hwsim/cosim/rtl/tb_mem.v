// The shim memory slaves (hwsim_axi_mem, hwsim_axil_mem, hwsim_avmm_mem, hwsim_wb_mem), plain Verilog
// for both simulators: small DUTs that master each bus (copy_axi: bursts; copy_axil, copy_avmm,
// copy_wb: one read then one write per word; each copies `words` words from `src` to `dst` and stops at
// the first error response) and the HDL masters,
// each on its own slave and shim space. Python drives `rst` (active high) and each copier's go/src/dst/
// words; a copier raises done (and err after an error response) until go drops.
`timescale 1ns/1ps
`default_nettype none

// the copy loop every copier runs, around its bus: rd -> (data) -> wr -> next word
`define COPY_STATE_IDLE 3'd0
`define COPY_STATE_RD   3'd1
`define COPY_STATE_RW   3'd2
`define COPY_STATE_WR   3'd3
`define COPY_STATE_WW   3'd4
`define COPY_STATE_DONE 3'd5

module copy_axil #(parameter DATA_W = 32) (
    input  wire clk, input wire rst, input wire go, input wire [63:0] src, input wire [63:0] dst,
    input  wire [15:0] words, output wire done, output reg err,
    output wire [31:0] awaddr, output reg awvalid, input wire awready,
    output wire [DATA_W-1:0] wdata, output wire [DATA_W/8-1:0] wstrb, output reg wvalid, input wire wready,
    input  wire [1:0] bresp, input wire bvalid, output wire bready,
    output wire [31:0] araddr, output wire arvalid, input wire arready,
    input  wire [DATA_W-1:0] rdata, input wire [1:0] rresp, input wire rvalid, output wire rready
);
    reg [2:0] state = 3'd0;
    reg [15:0] i = 16'd0;
    reg [DATA_W-1:0] data = {DATA_W{1'b0}};
    assign done    = state == `COPY_STATE_DONE;
    assign araddr  = src[31:0] + i * (DATA_W / 8);
    assign awaddr  = dst[31:0] + i * (DATA_W / 8);
    assign arvalid = state == `COPY_STATE_RD;
    assign rready  = state == `COPY_STATE_RW;
    assign bready  = state == `COPY_STATE_WW;
    assign wdata   = data;
    assign wstrb   = {DATA_W/8{1'b1}};
    always @(posedge clk) begin
        if (rst) begin
            state <= `COPY_STATE_IDLE; awvalid <= 1'b0; wvalid <= 1'b0; err <= 1'b0;
        end else case (state)
        `COPY_STATE_IDLE: if (go) begin i <= 16'd0; err <= 1'b0; state <= words ? `COPY_STATE_RD : `COPY_STATE_DONE; end
        `COPY_STATE_RD: if (arready) state <= `COPY_STATE_RW;
        `COPY_STATE_RW: if (rvalid) begin
                data <= rdata;
                if (rresp != 2'd0) begin err <= 1'b1; state <= `COPY_STATE_DONE; end
                else begin awvalid <= 1'b1; wvalid <= 1'b1; state <= `COPY_STATE_WR; end
            end
        `COPY_STATE_WR: begin
                if (awready) awvalid <= 1'b0;
                if (wready) wvalid <= 1'b0;
                if ((awready || !awvalid) && (wready || !wvalid)) state <= `COPY_STATE_WW;
            end
        `COPY_STATE_WW: if (bvalid) begin
                if (bresp != 2'd0) err <= 1'b1;
                i <= i + 16'd1;
                state <= (bresp != 2'd0 || i + 16'd1 == words) ? `COPY_STATE_DONE : `COPY_STATE_RD;
            end
        default: if (!go) state <= `COPY_STATE_IDLE;
        endcase
    end
endmodule

module copy_avmm (
    input  wire clk, input wire rst, input wire go, input wire [63:0] src, input wire [63:0] dst,
    input  wire [15:0] words, output wire done, output reg err,
    output wire [31:0] address, output wire read, output wire write, output wire [31:0] writedata,
    output wire [3:0] byteenable, input wire [31:0] readdata, input wire waitrequest,
    input  wire readdatavalid, input wire [1:0] response, input wire writeresponsevalid
);
    reg [2:0] state = 3'd0;
    reg [15:0] i = 16'd0;
    reg [31:0] data = 32'd0;
    assign done       = state == `COPY_STATE_DONE;
    assign address    = (state == `COPY_STATE_RD ? src[31:0] : dst[31:0]) + i * 4;   // byte addresses
    assign read       = state == `COPY_STATE_RD;
    assign write      = state == `COPY_STATE_WR;
    assign writedata  = data;
    assign byteenable = 4'hf;
    always @(posedge clk) begin
        if (rst) begin
            state <= `COPY_STATE_IDLE; err <= 1'b0;
        end else case (state)
        `COPY_STATE_IDLE: if (go) begin i <= 16'd0; err <= 1'b0; state <= words ? `COPY_STATE_RD : `COPY_STATE_DONE; end
        `COPY_STATE_RD: if (!waitrequest) state <= `COPY_STATE_RW;
        `COPY_STATE_RW: if (readdatavalid) begin
                data <= readdata;
                if (response != 2'd0) begin err <= 1'b1; state <= `COPY_STATE_DONE; end
                else state <= `COPY_STATE_WR;
            end
        `COPY_STATE_WR: if (!waitrequest) state <= `COPY_STATE_WW;
        `COPY_STATE_WW: if (writeresponsevalid) begin
                if (response != 2'd0) err <= 1'b1;
                i <= i + 16'd1;
                state <= (response != 2'd0 || i + 16'd1 == words) ? `COPY_STATE_DONE : `COPY_STATE_RD;
            end
        default: if (!go) state <= `COPY_STATE_IDLE;
        endcase
    end
endmodule

module copy_wb #(parameter PIPELINED = 0) (
    input  wire clk, input wire rst, input wire go, input wire [63:0] src, input wire [63:0] dst,
    input  wire [15:0] words, output wire done, output reg err,
    output wire cyc, output wire stb, output wire we, output wire [31:0] adr, output wire [31:0] dat_o,
    output wire [3:0] sel, input wire [31:0] dat_i, input wire ack, input wire wb_err, input wire stall
);
    reg [2:0] state = 3'd0;
    reg [15:0] i = 16'd0;
    reg [31:0] data = 32'd0;
    wire reading = state == `COPY_STATE_RD || state == `COPY_STATE_RW;
    wire writing = state == `COPY_STATE_WR || state == `COPY_STATE_WW;
    wire answer  = ack || wb_err;
    // classic: STB until the answer; pipelined: STB until taken (STALL low), CYC until the answer
    wire taken   = PIPELINED != 0 ? !stall : answer;
    assign done  = state == `COPY_STATE_DONE;
    assign cyc   = reading || writing;
    assign stb   = state == `COPY_STATE_RD || state == `COPY_STATE_WR;
    assign we    = writing;
    assign adr   = (reading ? src[31:0] : dst[31:0]) + i * 4;
    assign dat_o = data;
    assign sel   = 4'hf;
    always @(posedge clk) begin
        if (rst) begin
            state <= `COPY_STATE_IDLE; err <= 1'b0;
        end else case (state)
        `COPY_STATE_IDLE: if (go) begin i <= 16'd0; err <= 1'b0; state <= words ? `COPY_STATE_RD : `COPY_STATE_DONE; end
        `COPY_STATE_RD, `COPY_STATE_RW: if (answer && (state == `COPY_STATE_RW || taken)) begin
                data <= dat_i;
                if (wb_err) begin err <= 1'b1; state <= `COPY_STATE_DONE; end
                else state <= `COPY_STATE_WR;
            end else if (state == `COPY_STATE_RD && taken) state <= `COPY_STATE_RW;
        `COPY_STATE_WR, `COPY_STATE_WW: if (answer && (state == `COPY_STATE_WW || taken)) begin
                if (wb_err) err <= 1'b1;
                i <= i + 16'd1;
                state <= (wb_err || i + 16'd1 == words) ? `COPY_STATE_DONE : `COPY_STATE_RD;
            end else if (state == `COPY_STATE_WR && taken) state <= `COPY_STATE_WW;
        default: if (!go) state <= `COPY_STATE_IDLE;
        endcase
    end
endmodule


// AXI4: INCR bursts of up to 16 beats, each read burst into a buffer, then written out as one burst
module copy_axi (
    input  wire clk, input wire rst, input wire go, input wire [63:0] src, input wire [63:0] dst,
    input  wire [15:0] words, output wire done, output reg err,
    output wire [31:0] awaddr, output wire [7:0] awlen, output wire awvalid, input wire awready,
    output wire [31:0] wdata, output wire wlast, output wire wvalid, input wire wready,
    input  wire [1:0] bresp, input wire bvalid, output wire bready,
    output wire [31:0] araddr, output wire [7:0] arlen, output wire arvalid, input wire arready,
    input  wire [31:0] rdata, input wire [1:0] rresp, input wire rlast, input wire rvalid, output wire rready
);
    reg [2:0] state = 3'd0;
    reg [15:0] i = 16'd0;
    reg [4:0] k = 5'd0;
    reg [31:0] buffer [0:15];
    wire [15:0] left = words - i;
    wire [4:0] beats = (left > 16'd16) ? 5'd16 : left[4:0];
    assign done    = state == `COPY_STATE_DONE;
    assign araddr  = src[31:0] + i * 4;
    assign awaddr  = dst[31:0] + i * 4;
    assign arlen   = {3'd0, beats - 5'd1};
    assign awlen   = {3'd0, beats - 5'd1};
    assign arvalid = state == `COPY_STATE_RD;
    assign rready  = state == `COPY_STATE_RW;
    assign awvalid = state == `COPY_STATE_WR && k == 5'd0;
    assign wvalid  = state == `COPY_STATE_WR && k != 5'd0;
    assign wdata   = buffer[k - 5'd1];
    assign wlast   = k == beats;
    assign bready  = state == `COPY_STATE_WW;
    always @(posedge clk) begin
        if (rst) begin
            state <= `COPY_STATE_IDLE; err <= 1'b0;
        end else case (state)
        `COPY_STATE_IDLE: if (go) begin i <= 16'd0; err <= 1'b0; state <= words ? `COPY_STATE_RD : `COPY_STATE_DONE; end
        `COPY_STATE_RD: if (arready) begin k <= 5'd0; state <= `COPY_STATE_RW; end
        `COPY_STATE_RW: if (rvalid) begin
                buffer[k[3:0]] <= rdata;
                k <= k + 5'd1;
                if (rresp != 2'd0) err <= 1'b1;
                if (rlast) begin k <= 5'd0; state <= (err || rresp != 2'd0) ? `COPY_STATE_DONE : `COPY_STATE_WR; end
            end
        `COPY_STATE_WR: if (k == 5'd0) begin
                if (awready) k <= 5'd1;             // address taken: the data beats follow
            end else if (wready) begin
                if (wlast) state <= `COPY_STATE_WW;
                else k <= k + 5'd1;
            end
        `COPY_STATE_WW: if (bvalid) begin
                if (bresp != 2'd0) err <= 1'b1;
                i <= i + {11'd0, beats};
                state <= (bresp != 2'd0 || i + {11'd0, beats} == words) ? `COPY_STATE_DONE : `COPY_STATE_RD;
            end
        default: if (!go) state <= `COPY_STATE_IDLE;
        endcase
    end
endmodule

module tb_mem;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    wire rst_n = !rst;

    // ---- copy_axil -> hwsim_axil_mem (space 3) --------------------------------------------------
    reg ca_go = 1'b0; reg [63:0] ca_src = 64'd0, ca_dst = 64'd0; reg [15:0] ca_words = 16'd0; wire ca_done, ca_err;
    wire [31:0] ca_awaddr, ca_araddr, ca_wdata, ca_rdata; wire [3:0] ca_wstrb; wire [1:0] ca_bresp, ca_rresp;
    wire ca_awvalid, ca_awready, ca_wvalid, ca_wready, ca_bvalid, ca_bready, ca_arvalid, ca_arready, ca_rvalid,
         ca_rready;
    copy_axil dut_axil (.clk(clk), .rst(rst), .go(ca_go), .src(ca_src), .dst(ca_dst), .words(ca_words),
        .done(ca_done), .err(ca_err), .awaddr(ca_awaddr), .awvalid(ca_awvalid), .awready(ca_awready),
        .wdata(ca_wdata), .wstrb(ca_wstrb), .wvalid(ca_wvalid), .wready(ca_wready), .bresp(ca_bresp),
        .bvalid(ca_bvalid), .bready(ca_bready), .araddr(ca_araddr), .arvalid(ca_arvalid), .arready(ca_arready),
        .rdata(ca_rdata), .rresp(ca_rresp), .rvalid(ca_rvalid), .rready(ca_rready));
    hwsim_axil_mem #(.SPACE(3)) mem_axil (.clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(ca_awaddr), .s_axil_awprot(3'd0), .s_axil_awvalid(ca_awvalid), .s_axil_awready(ca_awready),
        .s_axil_wdata(ca_wdata), .s_axil_wstrb(ca_wstrb), .s_axil_wvalid(ca_wvalid), .s_axil_wready(ca_wready),
        .s_axil_bresp(ca_bresp), .s_axil_bvalid(ca_bvalid), .s_axil_bready(ca_bready),
        .s_axil_araddr(ca_araddr), .s_axil_arprot(3'd0), .s_axil_arvalid(ca_arvalid), .s_axil_arready(ca_arready),
        .s_axil_rdata(ca_rdata), .s_axil_rresp(ca_rresp), .s_axil_rvalid(ca_rvalid), .s_axil_rready(ca_rready));

    // ---- copy_avmm -> hwsim_avmm_mem, byte addresses (space 4) ---------------------------------
    reg cv_go = 1'b0; reg [63:0] cv_src = 64'd0, cv_dst = 64'd0; reg [15:0] cv_words = 16'd0; wire cv_done, cv_err;
    wire [31:0] cv_address, cv_writedata, cv_readdata; wire [3:0] cv_byteenable; wire [1:0] cv_response;
    wire cv_read, cv_write, cv_waitrequest, cv_readdatavalid, cv_writeresponsevalid;
    copy_avmm dut_avmm (.clk(clk), .rst(rst), .go(cv_go), .src(cv_src), .dst(cv_dst), .words(cv_words),
        .done(cv_done), .err(cv_err), .address(cv_address), .read(cv_read), .write(cv_write),
        .writedata(cv_writedata), .byteenable(cv_byteenable), .readdata(cv_readdata), .waitrequest(cv_waitrequest),
        .readdatavalid(cv_readdatavalid), .response(cv_response), .writeresponsevalid(cv_writeresponsevalid));
    hwsim_avmm_mem #(.SPACE(4), .WORD_ADDRESS(0)) mem_avmm (.clk(clk), .rst_n(rst_n),
        .s_avmm_address(cv_address), .s_avmm_read(cv_read), .s_avmm_write(cv_write),
        .s_avmm_writedata(cv_writedata), .s_avmm_byteenable(cv_byteenable), .s_avmm_readdata(cv_readdata),
        .s_avmm_waitrequest(cv_waitrequest), .s_avmm_readdatavalid(cv_readdatavalid),
        .s_avmm_response(cv_response), .s_avmm_writeresponsevalid(cv_writeresponsevalid));

    // ---- copy_wb classic (space 5) and pipelined (space 6) -> hwsim_wb_mem ---------------------
    reg cw_go = 1'b0; reg [63:0] cw_src = 64'd0, cw_dst = 64'd0; reg [15:0] cw_words = 16'd0; wire cw_done, cw_err;
    reg cp_go = 1'b0; reg [63:0] cp_src = 64'd0, cp_dst = 64'd0; reg [15:0] cp_words = 16'd0; wire cp_done, cp_err;
    wire [31:0] cw_adr, cw_dat_o, cw_dat_i, cp_adr, cp_dat_o, cp_dat_i; wire [3:0] cw_sel, cp_sel;
    wire cw_cyc, cw_stb, cw_we, cw_ack, cw_werr, cw_stall, cp_cyc, cp_stb, cp_we, cp_ack, cp_werr, cp_stall;
    copy_wb #(.PIPELINED(0)) dut_wb (.clk(clk), .rst(rst), .go(cw_go), .src(cw_src), .dst(cw_dst),
        .words(cw_words), .done(cw_done), .err(cw_err), .cyc(cw_cyc), .stb(cw_stb), .we(cw_we), .adr(cw_adr),
        .dat_o(cw_dat_o), .sel(cw_sel), .dat_i(cw_dat_i), .ack(cw_ack), .wb_err(cw_werr), .stall(cw_stall));
    hwsim_wb_mem #(.SPACE(5), .PIPELINED(0)) mem_wb (.clk(clk), .rst_n(rst_n), .s_wb_cyc(cw_cyc),
        .s_wb_stb(cw_stb), .s_wb_we(cw_we), .s_wb_adr(cw_adr), .s_wb_dat_i(cw_dat_o), .s_wb_sel(cw_sel),
        .s_wb_dat_o(cw_dat_i), .s_wb_ack(cw_ack), .s_wb_err(cw_werr), .s_wb_stall(cw_stall));
    copy_wb #(.PIPELINED(1)) dut_wbp (.clk(clk), .rst(rst), .go(cp_go), .src(cp_src), .dst(cp_dst),
        .words(cp_words), .done(cp_done), .err(cp_err), .cyc(cp_cyc), .stb(cp_stb), .we(cp_we), .adr(cp_adr),
        .dat_o(cp_dat_o), .sel(cp_sel), .dat_i(cp_dat_i), .ack(cp_ack), .wb_err(cp_werr), .stall(cp_stall));
    hwsim_wb_mem #(.SPACE(6), .PIPELINED(1)) mem_wbp (.clk(clk), .rst_n(rst_n), .s_wb_cyc(cp_cyc),
        .s_wb_stb(cp_stb), .s_wb_we(cp_we), .s_wb_adr(cp_adr), .s_wb_dat_i(cp_dat_o), .s_wb_sel(cp_sel),
        .s_wb_dat_o(cp_dat_i), .s_wb_ack(cp_ack), .s_wb_err(cp_werr), .s_wb_stall(cp_stall));

    // ---- the HDL masters, each on its own memory slave: 64-bit AXI4-Lite (7), Avalon-MM with word
    // addresses (8), Wishbone pipelined (9) and classic (10) -------------------------------------
    wire [31:0] xa_awaddr, xa_araddr; wire [2:0] xa_awprot, xa_arprot; wire [63:0] xa_wdata, xa_rdata;
    wire [7:0] xa_wstrb; wire [1:0] xa_bresp, xa_rresp;
    wire xa_awvalid, xa_awready, xa_wvalid, xa_wready, xa_bvalid, xa_bready, xa_arvalid, xa_arready, xa_rvalid,
         xa_rready;
    hwsim_axil_master #(.DATA_W(64)) m_axil64 (.clk(clk), .rst_n(rst_n), .enable(1'b1), .busy(),
        .m_axil_awaddr(xa_awaddr), .m_axil_awprot(xa_awprot), .m_axil_awvalid(xa_awvalid),
        .m_axil_awready(xa_awready), .m_axil_wdata(xa_wdata), .m_axil_wstrb(xa_wstrb), .m_axil_wvalid(xa_wvalid),
        .m_axil_wready(xa_wready), .m_axil_bresp(xa_bresp), .m_axil_bvalid(xa_bvalid), .m_axil_bready(xa_bready),
        .m_axil_araddr(xa_araddr), .m_axil_arprot(xa_arprot), .m_axil_arvalid(xa_arvalid),
        .m_axil_arready(xa_arready), .m_axil_rdata(xa_rdata), .m_axil_rresp(xa_rresp), .m_axil_rvalid(xa_rvalid),
        .m_axil_rready(xa_rready));
    hwsim_axil_mem #(.SPACE(7), .DATA_W(64)) mem_axil64 (.clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(xa_awaddr), .s_axil_awprot(xa_awprot), .s_axil_awvalid(xa_awvalid),
        .s_axil_awready(xa_awready), .s_axil_wdata(xa_wdata), .s_axil_wstrb(xa_wstrb), .s_axil_wvalid(xa_wvalid),
        .s_axil_wready(xa_wready), .s_axil_bresp(xa_bresp), .s_axil_bvalid(xa_bvalid), .s_axil_bready(xa_bready),
        .s_axil_araddr(xa_araddr), .s_axil_arprot(xa_arprot), .s_axil_arvalid(xa_arvalid),
        .s_axil_arready(xa_arready), .s_axil_rdata(xa_rdata), .s_axil_rresp(xa_rresp), .s_axil_rvalid(xa_rvalid),
        .s_axil_rready(xa_rready));

    wire [31:0] xv_address, xv_writedata, xv_readdata; wire [3:0] xv_byteenable; wire [1:0] xv_response;
    wire xv_read, xv_write, xv_waitrequest, xv_readdatavalid, xv_writeresponsevalid;
    hwsim_avmm_master m_avmm (.clk(clk), .rst_n(rst_n), .m_avmm_address(xv_address), .m_avmm_read(xv_read),
        .m_avmm_write(xv_write), .m_avmm_writedata(xv_writedata), .m_avmm_byteenable(xv_byteenable),
        .m_avmm_readdata(xv_readdata), .m_avmm_waitrequest(xv_waitrequest),
        .m_avmm_readdatavalid(xv_readdatavalid), .m_avmm_response(xv_response),
        .m_avmm_writeresponsevalid(xv_writeresponsevalid));
    hwsim_avmm_mem #(.SPACE(8)) mem_xavmm (.clk(clk), .rst_n(rst_n), .s_avmm_address(xv_address),
        .s_avmm_read(xv_read), .s_avmm_write(xv_write), .s_avmm_writedata(xv_writedata),
        .s_avmm_byteenable(xv_byteenable), .s_avmm_readdata(xv_readdata), .s_avmm_waitrequest(xv_waitrequest),
        .s_avmm_readdatavalid(xv_readdatavalid), .s_avmm_response(xv_response),
        .s_avmm_writeresponsevalid(xv_writeresponsevalid));

    wire [31:0] xp_adr, xp_dat_o, xp_dat_i, xw_adr, xw_dat_o, xw_dat_i; wire [3:0] xp_sel, xw_sel;
    wire xp_cyc, xp_stb, xp_we, xp_ack, xp_err, xp_stall, xw_cyc, xw_stb, xw_we, xw_ack, xw_err, xw_stall;
    hwsim_wb_master #(.PIPELINED(1)) m_wbp (.clk(clk), .rst_n(rst_n), .m_wb_cyc(xp_cyc), .m_wb_stb(xp_stb),
        .m_wb_we(xp_we), .m_wb_adr(xp_adr), .m_wb_dat_o(xp_dat_o), .m_wb_sel(xp_sel), .m_wb_dat_i(xp_dat_i),
        .m_wb_ack(xp_ack), .m_wb_err(xp_err), .m_wb_rty(1'b0), .m_wb_stall(xp_stall));
    hwsim_wb_mem #(.SPACE(9), .PIPELINED(1)) mem_xwbp (.clk(clk), .rst_n(rst_n), .s_wb_cyc(xp_cyc),
        .s_wb_stb(xp_stb), .s_wb_we(xp_we), .s_wb_adr(xp_adr), .s_wb_dat_i(xp_dat_o), .s_wb_sel(xp_sel),
        .s_wb_dat_o(xp_dat_i), .s_wb_ack(xp_ack), .s_wb_err(xp_err), .s_wb_stall(xp_stall));
    hwsim_wb_master #(.PIPELINED(0)) m_wb (.clk(clk), .rst_n(rst_n), .m_wb_cyc(xw_cyc), .m_wb_stb(xw_stb),
        .m_wb_we(xw_we), .m_wb_adr(xw_adr), .m_wb_dat_o(xw_dat_o), .m_wb_sel(xw_sel), .m_wb_dat_i(xw_dat_i),
        .m_wb_ack(xw_ack), .m_wb_err(xw_err), .m_wb_rty(1'b0), .m_wb_stall(1'b0));
    hwsim_wb_mem #(.SPACE(10), .PIPELINED(0)) mem_xwb (.clk(clk), .rst_n(rst_n), .s_wb_cyc(xw_cyc),
        .s_wb_stb(xw_stb), .s_wb_we(xw_we), .s_wb_adr(xw_adr), .s_wb_dat_i(xw_dat_o), .s_wb_sel(xw_sel),
        .s_wb_dat_o(xw_dat_i), .s_wb_ack(xw_ack), .s_wb_err(xw_err), .s_wb_stall(xw_stall));

    // ---- copy_axi -> hwsim_axi_mem, 32-bit INCR bursts (space 11) -----------------------------
    reg cx_go = 1'b0; reg [63:0] cx_src = 64'd0, cx_dst = 64'd0; reg [15:0] cx_words = 16'd0; wire cx_done, cx_err;
    wire [31:0] cx_awaddr, cx_araddr, cx_wdata, cx_rdata; wire [7:0] cx_awlen, cx_arlen; wire [1:0] cx_bresp, cx_rresp;
    wire cx_awvalid, cx_awready, cx_wvalid, cx_wready, cx_wlast, cx_bvalid, cx_bready, cx_arvalid, cx_arready,
         cx_rvalid, cx_rready, cx_rlast;
    copy_axi dut_axi (.clk(clk), .rst(rst), .go(cx_go), .src(cx_src), .dst(cx_dst), .words(cx_words),
        .done(cx_done), .err(cx_err), .awaddr(cx_awaddr), .awlen(cx_awlen), .awvalid(cx_awvalid),
        .awready(cx_awready), .wdata(cx_wdata), .wlast(cx_wlast), .wvalid(cx_wvalid), .wready(cx_wready),
        .bresp(cx_bresp), .bvalid(cx_bvalid), .bready(cx_bready), .araddr(cx_araddr), .arlen(cx_arlen),
        .arvalid(cx_arvalid), .arready(cx_arready), .rdata(cx_rdata), .rresp(cx_rresp), .rlast(cx_rlast),
        .rvalid(cx_rvalid), .rready(cx_rready));
    hwsim_axi_mem #(.SPACE(11), .ADDR_W(32), .DATA_W(32), .ID_W(1)) mem_axi (.clk(clk), .rst_n(rst_n),
        .s_axi_awid(1'b0), .s_axi_awaddr(cx_awaddr), .s_axi_awlen(cx_awlen), .s_axi_awsize(3'd2),
        .s_axi_awburst(2'd1), .s_axi_awvalid(cx_awvalid), .s_axi_awready(cx_awready), .s_axi_wdata(cx_wdata),
        .s_axi_wstrb(4'hf), .s_axi_wlast(cx_wlast), .s_axi_wvalid(cx_wvalid), .s_axi_wready(cx_wready),
        .s_axi_bid(), .s_axi_bresp(cx_bresp), .s_axi_bvalid(cx_bvalid), .s_axi_bready(cx_bready),
        .s_axi_arid(1'b0), .s_axi_araddr(cx_araddr), .s_axi_arlen(cx_arlen), .s_axi_arsize(3'd2),
        .s_axi_arburst(2'd1), .s_axi_arvalid(cx_arvalid), .s_axi_arready(cx_arready), .s_axi_rid(),
        .s_axi_rdata(cx_rdata), .s_axi_rresp(cx_rresp), .s_axi_rlast(cx_rlast), .s_axi_rvalid(cx_rvalid),
        .s_axi_rready(cx_rready));
endmodule

`undef COPY_STATE_IDLE
`undef COPY_STATE_RD
`undef COPY_STATE_RW
`undef COPY_STATE_WR
`undef COPY_STATE_WW
`undef COPY_STATE_DONE
`default_nettype wire
