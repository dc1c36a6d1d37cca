// On-chip write buffer storage: lines of one 512-byte sector each (DW-bit words), as a simple dual-port RAM
// (one write port, one read port with a registered result one cycle after the request).
// Tags, valid and dirty bits live in the engine, which decides what a line holds.
`default_nettype none

module vblk_cache #(
    parameter DW = 32,
    parameter AW = 10                      // word address bits
) (
    input  wire          clk,
    input  wire          rst_n,
    input  wire          we,
    input  wire [AW-1:0] waddr,
    input  wire [DW-1:0] wdata,
    input  wire          re,
    input  wire [AW-1:0] raddr,
    output reg  [DW-1:0] rdata,
    output reg           rvalid
);
    reg [DW-1:0] mem [0:(1 << AW) - 1];

    always @(posedge clk) begin
        if (we)
            mem[waddr] <= wdata;
        rvalid <= re && rst_n;
        if (re)
            rdata <= mem[raddr];
    end
endmodule

`default_nettype wire
