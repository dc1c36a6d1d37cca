// The pure-Verilog bench (tb_bench) on the controller built with the 64-bit datapath (DATA_W=64).
`timescale 1ns/1ps
`default_nettype none

module tb_bench_w64;
    tb_bench #(.DATA_W(64)) bench ();
endmodule

`default_nettype wire
