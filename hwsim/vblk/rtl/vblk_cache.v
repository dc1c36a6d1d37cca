// On-chip write buffer storage: NLINES lines of one 512-byte sector each, as a simple dual-port RAM
// (one write port, one read port with a registered result one cycle after the request).
// Tags, valid and dirty bits live in the engine, which decides what a line holds.
`default_nettype none

module vblk_cache #(
    parameter AW = 10                      // word address bits: 2**(AW-7) lines of 128 words
) (
    input  wire          clk,
    input  wire          rst_n,
    input  wire          we,
    input  wire [AW-1:0] waddr,
    input  wire [31:0]   wdata,
    input  wire          re,
    input  wire [AW-1:0] raddr,
    output reg  [31:0]   rdata,
    output reg           rvalid
);
    reg [31:0] mem [0:(1 << AW) - 1];

    always @(posedge clk) begin
        if (we)
            mem[waddr] <= wdata;
        rvalid <= re && rst_n;
        if (re)
            rdata <= mem[raddr];
    end
endmodule

`default_nettype wire
