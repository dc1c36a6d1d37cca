// Slow slaves behind the HDL masters (plain Verilog: Icarus and Verilator): WAIT clocks before a request
// is taken and again before it is answered, four words of memory at 0x0..0xc, an error response at
// 0x10 and above (Wishbone: ERR_O at 0x10..0x1f, RTY_O from 0x20; Avalon-MM: SLVERR at 0x10..0x1f,
// DECODEERROR at 0x20..0x2f, the RESERVED code from 0x30). AXI4-Lite 32- and 64-bit, APB4, APB3, Wishbone B4
// classic, Avalon-MM with waitrequest, readdatavalid and writeresponsevalid. Python drives `rst` (active high)
// and sets the wait states at run time (`wait_states`).
`timescale 1ns/1ps
`default_nettype none

module slow_axil_slave #(parameter DATA_W = 32) (
    input  wire clk, input wire rst, input wire [7:0] wait_states,
    input  wire [5:0] awaddr, input wire awvalid, output reg awready,
    input  wire [DATA_W-1:0] wdata, input wire [DATA_W/8-1:0] wstrb, input wire wvalid, output reg wready,
    output reg [1:0] bresp, output reg bvalid, input wire bready,
    input  wire [5:0] araddr, input wire arvalid, output reg arready,
    output reg [DATA_W-1:0] rdata, output reg [1:0] rresp, output reg rvalid, input wire rready
);
    localparam B = DATA_W / 8;
    reg [DATA_W-1:0] mem [0:3];
    reg [7:0] count;
    reg [5:0] addr;
    reg [2:0] state;   // 0 idle, 1 read wait, 2 read answer, 3 write wait, 4 write answer
    integer i;
    initial begin
        for (i = 0; i < 4; i = i + 1) mem[i] = {DATA_W{1'b0}};
        state = 3'd0; count = 8'd0; awready = 1'b0; wready = 1'b0; arready = 1'b0; bvalid = 1'b0; rvalid = 1'b0;
    end
    wire [1:0] word = addr[2 + (B == 8 ? 1 : 0) +: 2];
    always @(posedge clk) begin
        arready <= 1'b0; awready <= 1'b0; wready <= 1'b0;
        if (rst) begin
            state <= 3'd0; bvalid <= 1'b0; rvalid <= 1'b0;
        end else case (state)
        3'd0: if (arvalid) begin
                  if (count < wait_states) count <= count + 8'd1;
                  else begin arready <= 1'b1; addr <= araddr; count <= 8'd0; state <= 3'd1; end
              end else if (awvalid && wvalid) begin
                  if (count < wait_states) count <= count + 8'd1;
                  else begin
                      awready <= 1'b1; wready <= 1'b1; addr <= awaddr; count <= 8'd0; state <= 3'd3;
                      if (awaddr < 6'h10 * (B / 4))
                          for (i = 0; i < B; i = i + 1)
                              if (wstrb[i]) mem[awaddr[2 + (B == 8 ? 1 : 0) +: 2]][8 * i +: 8] <= wdata[8 * i +: 8];
                  end
              end
        3'd1: if (count < wait_states) count <= count + 8'd1;
              else begin
                  rvalid <= 1'b1; rdata <= (addr < 6'h10 * (B / 4)) ? mem[word] : {DATA_W{1'b1}};
                  rresp <= (addr < 6'h10 * (B / 4)) ? 2'd0 : 2'd2; count <= 8'd0; state <= 3'd2;
              end
        3'd2: if (rready) begin rvalid <= 1'b0; state <= 3'd0; end
        3'd3: if (count < wait_states) count <= count + 8'd1;
              else begin
                  bvalid <= 1'b1; bresp <= (addr < 6'h10 * (B / 4)) ? 2'd0 : 2'd3; count <= 8'd0; state <= 3'd4;
              end
        3'd4: if (bready) begin bvalid <= 1'b0; state <= 3'd0; end
        default: state <= 3'd0;
        endcase
    end
endmodule

module slow_apb_slave (
    input  wire clk, input wire rst, input wire [7:0] wait_states,
    input  wire psel, input wire penable, input wire [5:0] paddr, input wire pwrite,
    input  wire [31:0] pwdata, input wire [3:0] pstrb,
    output wire [31:0] prdata, output wire pready, output wire pslverr
);
    reg [31:0] mem [0:3];
    reg [7:0] count;
    integer i;
    initial begin for (i = 0; i < 4; i = i + 1) mem[i] = 32'd0; count = 8'd0; end
    wire bad = paddr >= 6'h10;
    assign pready  = psel && penable && count >= wait_states;
    assign pslverr = pready && bad;
    assign prdata  = bad ? 32'hffff_ffff : mem[paddr[3:2]];
    always @(posedge clk) begin
        if (rst || !(psel && penable) || pready) count <= 8'd0;
        else count <= count + 8'd1;
        if (psel && penable && pready && pwrite && !bad)
            for (i = 0; i < 4; i = i + 1)
                if (pstrb[i]) mem[paddr[3:2]][8 * i +: 8] <= pwdata[8 * i +: 8];
    end
endmodule

module slow_wb_classic_slave (
    input  wire clk, input wire rst, input wire [7:0] wait_states,
    input  wire cyc, input wire stb, input wire we, input wire [5:0] adr,
    input  wire [31:0] dat_i, input wire [3:0] sel,
    output reg [31:0] dat_o, output reg ack, output reg err, output reg rty
);
    reg [31:0] mem [0:3];
    reg [7:0] count;
    integer i;
    initial begin
        for (i = 0; i < 4; i = i + 1) mem[i] = 32'd0;
        count = 8'd0; ack = 1'b0; err = 1'b0; rty = 1'b0;
    end
    always @(posedge clk) begin
        ack <= 1'b0; err <= 1'b0; rty <= 1'b0;
        if (rst || !(cyc && stb) || ack || err || rty) count <= 8'd0;
        else if (count < wait_states) count <= count + 8'd1;
        else begin
            count <= 8'd0;
            if (adr >= 6'h20) rty <= 1'b1;          // retry: 0x20 and above
            else if (adr >= 6'h10) err <= 1'b1;     // error: 0x10..0x1f
            else begin
                ack <= 1'b1;
                dat_o <= mem[adr[3:2]];
                if (we) for (i = 0; i < 4; i = i + 1) if (sel[i]) mem[adr[3:2]][8 * i +: 8] <= dat_i[8 * i +: 8];
            end
        end
    end
endmodule

// waitrequest for `wait_states` clocks, then the request is taken; readdatavalid or writeresponsevalid with
// `response` one clock later (byte addresses)
module slow_avmm_slave (
    input  wire clk, input wire rst, input wire [7:0] wait_states,
    input  wire [5:0] address, input wire read, input wire write, input wire [31:0] writedata,
    input  wire [3:0] byteenable,
    output reg [31:0] readdata, output wire waitrequest, output reg readdatavalid, output reg [1:0] response,
    output reg writeresponsevalid
);
    reg [31:0] mem [0:3];
    reg [7:0] count;
    integer i;
    initial begin
        for (i = 0; i < 4; i = i + 1) mem[i] = 32'd0;
        count = 8'd0; readdatavalid = 1'b0; writeresponsevalid = 1'b0; response = 2'd0; readdata = 32'd0;
    end
    wire req = read || write;
    wire [1:0] code = address < 6'h10 ? 2'd0 : address < 6'h20 ? 2'd2 : address < 6'h30 ? 2'd3 : 2'd1;
    assign waitrequest = rst || (req && count < wait_states);
    always @(posedge clk) begin
        readdatavalid <= 1'b0; writeresponsevalid <= 1'b0;
        if (rst || !req) count <= 8'd0;
        else if (waitrequest) count <= count + 8'd1;
        else begin
            count <= 8'd0;
            response <= code;
            if (read) begin
                readdatavalid <= 1'b1;
                readdata <= code == 2'd0 ? mem[address[3:2]] : 32'hffff_ffff;
            end else begin
                writeresponsevalid <= 1'b1;
                if (code == 2'd0)
                    for (i = 0; i < 4; i = i + 1)
                        if (byteenable[i]) mem[address[3:2]][8 * i +: 8] <= writedata[8 * i +: 8];
            end
        end
    end
endmodule

// hwsim_axil_master `m` on a slow_axil_slave `s`
module axil_pair #(parameter W = 32) (input wire clk, input wire rst, input wire [7:0] wait_states);
    wire [5:0] awaddr, araddr; wire [2:0] awprot, arprot;
    wire [W-1:0] wdata, rdata; wire [W/8-1:0] wstrb; wire [1:0] bresp, rresp;
    wire awvalid, awready, wvalid, wready, bvalid, bready, arvalid, arready, rvalid, rready;
    hwsim_axil_master #(.ADDR_W(6), .DATA_W(W)) m (.clk(clk), .rst_n(!rst), .enable(1'b1), .busy(),
        .m_axil_awaddr(awaddr), .m_axil_awprot(awprot), .m_axil_awvalid(awvalid), .m_axil_awready(awready),
        .m_axil_wdata(wdata), .m_axil_wstrb(wstrb), .m_axil_wvalid(wvalid), .m_axil_wready(wready),
        .m_axil_bresp(bresp), .m_axil_bvalid(bvalid), .m_axil_bready(bready), .m_axil_araddr(araddr),
        .m_axil_arprot(arprot), .m_axil_arvalid(arvalid), .m_axil_arready(arready), .m_axil_rdata(rdata),
        .m_axil_rresp(rresp), .m_axil_rvalid(rvalid), .m_axil_rready(rready));
    slow_axil_slave #(.DATA_W(W)) s (.clk(clk), .rst(rst), .wait_states(wait_states), .awaddr(awaddr),
        .awvalid(awvalid), .awready(awready), .wdata(wdata), .wstrb(wstrb), .wvalid(wvalid), .wready(wready),
        .bresp(bresp), .bvalid(bvalid), .bready(bready), .araddr(araddr), .arvalid(arvalid), .arready(arready),
        .rdata(rdata), .rresp(rresp), .rvalid(rvalid), .rready(rready));
endmodule

module tb_slow;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    reg [7:0] wait_states = 8'd7;

    axil_pair #(.W(32)) p32 (.clk(clk), .rst(rst), .wait_states(wait_states));
    axil_pair #(.W(64)) p64 (.clk(clk), .rst(rst), .wait_states(wait_states));

    wire [5:0] paddr; wire [31:0] pwdata, prdata; wire [3:0] pstrb; wire [2:0] pprot;
    wire psel, penable, pwrite, pready, pslverr;
    hwsim_apb_master #(.ADDR_W(6)) m_apb (.clk(clk), .rst_n(!rst), .m_apb_psel(psel), .m_apb_penable(penable),
        .m_apb_paddr(paddr), .m_apb_pwrite(pwrite), .m_apb_pwdata(pwdata), .m_apb_pstrb(pstrb),
        .m_apb_pprot(pprot), .m_apb_prdata(prdata), .m_apb_pready(pready), .m_apb_pslverr(pslverr));
    slow_apb_slave s_apb (.clk(clk), .rst(rst), .wait_states(wait_states), .psel(psel), .penable(penable),
        .paddr(paddr), .pwrite(pwrite), .pwdata(pwdata), .pstrb(pstrb), .prdata(prdata), .pready(pready),
        .pslverr(pslverr));

    // APB3: no PSTRB or PPROT at the slave (it sees whole-word writes)
    wire [5:0] paddr3; wire [31:0] pwdata3, prdata3; wire psel3, penable3, pwrite3, pready3, pslverr3;
    hwsim_apb_master #(.ADDR_W(6)) m_apb3 (.clk(clk), .rst_n(!rst), .m_apb_psel(psel3), .m_apb_penable(penable3),
        .m_apb_paddr(paddr3), .m_apb_pwrite(pwrite3), .m_apb_pwdata(pwdata3), .m_apb_pstrb(), .m_apb_pprot(),
        .m_apb_prdata(prdata3), .m_apb_pready(pready3), .m_apb_pslverr(pslverr3));
    slow_apb_slave s_apb3 (.clk(clk), .rst(rst), .wait_states(wait_states), .psel(psel3), .penable(penable3),
        .paddr(paddr3), .pwrite(pwrite3), .pwdata(pwdata3), .pstrb(4'hf), .prdata(prdata3), .pready(pready3),
        .pslverr(pslverr3));

    wire [5:0] wb_adr; wire [31:0] wb_dat_o, wb_dat_i; wire [3:0] wb_sel;
    wire wb_cyc, wb_stb, wb_we, wb_ack, wb_err, wb_rty;
    hwsim_wb_master #(.ADDR_W(6), .PIPELINED(0)) m_wb (.clk(clk), .rst_n(!rst), .m_wb_cyc(wb_cyc),
        .m_wb_stb(wb_stb), .m_wb_we(wb_we), .m_wb_adr(wb_adr), .m_wb_dat_o(wb_dat_o), .m_wb_sel(wb_sel),
        .m_wb_dat_i(wb_dat_i), .m_wb_ack(wb_ack), .m_wb_err(wb_err), .m_wb_rty(wb_rty), .m_wb_stall(1'b0));
    slow_wb_classic_slave s_wb (.clk(clk), .rst(rst), .wait_states(wait_states), .cyc(wb_cyc), .stb(wb_stb),
        .we(wb_we), .adr(wb_adr), .dat_i(wb_dat_o), .sel(wb_sel), .dat_o(wb_dat_i), .ack(wb_ack), .err(wb_err),
        .rty(wb_rty));

    wire [5:0] av_address; wire [31:0] av_writedata, av_readdata; wire [3:0] av_byteenable; wire [1:0] av_response;
    wire av_read, av_write, av_waitrequest, av_readdatavalid, av_writeresponsevalid;
    hwsim_avmm_master #(.ADDR_W(6), .WORD_ADDRESS(0)) m_avmm (.clk(clk), .rst_n(!rst),
        .m_avmm_address(av_address), .m_avmm_read(av_read), .m_avmm_write(av_write),
        .m_avmm_writedata(av_writedata), .m_avmm_byteenable(av_byteenable), .m_avmm_readdata(av_readdata),
        .m_avmm_waitrequest(av_waitrequest), .m_avmm_readdatavalid(av_readdatavalid),
        .m_avmm_response(av_response), .m_avmm_writeresponsevalid(av_writeresponsevalid));
    slow_avmm_slave s_avmm (.clk(clk), .rst(rst), .wait_states(wait_states), .address(av_address), .read(av_read),
        .write(av_write), .writedata(av_writedata), .byteenable(av_byteenable), .readdata(av_readdata),
        .waitrequest(av_waitrequest), .readdatavalid(av_readdatavalid), .response(av_response),
        .writeresponsevalid(av_writeresponsevalid));
endmodule

`default_nettype wire
