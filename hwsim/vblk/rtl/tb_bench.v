// Pure-Verilog test bench (no cocotb, no Python): the baseline for simulated cycles per wall second.
//
// The same harness and RTL as tb_cosim, driven by a Verilog task-level driver doing what the Python
// benchmark does: initialise, then +n=N reads of 4 KiB at queue depth 1, each one notify, wait for the
// interrupt, read InterruptStatus, ACK it, read Status. Host RAM and media are anonymous memory in
// hwsim_shm. Prints "BENCH cycles=C requests=N errors=E" and finishes.
`timescale 1ns/1ps
`default_nettype none

module tb_bench #(
    parameter DATA_W = 32
);
`ifdef VERILATOR
    import "DPI-C" function void hwsim_dpi_write(input int space, input longint addr, input int data,
                                                 input int strb);
    import "DPI-C" function int hwsim_dpi_read(input int space, input longint addr);
    import "DPI-C" function int hwsim_dpi_anon(input int space, input longint base, input longint size);
`define MEMW(a, d, s) hwsim_dpi_write(0, a, d, s)
`define MEMR(a)       hwsim_dpi_read(0, a)
`define ANON(s, b, n) anon_ok = hwsim_dpi_anon(s, b, n)
`else
`define MEMW(a, d, s) $hwsim_write(0, a, d, s)
`define MEMR(a)       $hwsim_read(0, a)
`define ANON(s, b, n) $hwsim_anon(s, b, n)
`endif

    localparam [63:0] HOST = 64'h0000_0000_8000_0000;
    localparam [63:0] DESC = HOST + 64'h1000, AVAIL = HOST + 64'h2000, USED = HOST + 64'h3000;
    localparam [63:0] HDR = HOST + 64'h4000, STAT = HOST + 64'h4020, DATA = HOST + 64'h5000;

    reg         clk = 1'b0;
    always #5 clk = ~clk;

    reg         rst_n = 1'b0;
    wire        irq;
    reg  [63:0] cycles = 64'd0;
    integer     n, i, errors, anon_ok, lat;
    reg  [15:0] latency = 16'd0;
    reg  [31:0] value;
    // The harness's knobs are variables, as under cocotb (where Python sets them), not constants: Verilator
    // would fold constant ones and drop logic the cocotb build runs every clock (the back-pressure LFSR
    // compare on every grant, the bus-port multiplexer). Only +stall= is read; the rest stay as set here.
    reg  [7:0]  stall = 8'd0;
    reg         bus_sel = 1'b0, readonly = 1'b0;
    reg  [63:0] capacity = 64'd2048, media_base = 64'd0;
    integer     knob;

    always @(posedge clk)
        cycles <= cycles + 64'd1;

    /* verilator lint_off PINCONNECTEMPTY */
    tb_harness #(.DATA_W(DATA_W)) h (
        .clk(clk), .rst_n(rst_n),
        .bus_sel(bus_sel),
        .ext_axil_awaddr(12'd0), .ext_axil_awvalid(1'b0), .ext_axil_awready(),
        .ext_axil_wdata(32'd0), .ext_axil_wstrb(4'd0), .ext_axil_wvalid(1'b0), .ext_axil_wready(),
        .ext_axil_bresp(), .ext_axil_bvalid(), .ext_axil_bready(1'b0),
        .ext_axil_araddr(12'd0), .ext_axil_arvalid(1'b0), .ext_axil_arready(),
        .ext_axil_rdata(), .ext_axil_rresp(), .ext_axil_rvalid(), .ext_axil_rready(1'b0),
        .capacity(capacity), .media_base(media_base), .readonly(readonly), .stall(stall),
        .med_latency(latency), .med_latency_step(16'd0), .irq(irq));
    /* verilator lint_on PINCONNECTEMPTY */

    task mmio(input [31:0] addr, input [31:0] data, input [3:0] strb);
        begin
            h.m.cmd_addr  = addr;   // the harness's HDL AXI4-Lite master, as Python drives it
            h.m.cmd_wdata = data;
            h.m.cmd_wstrb = strb;
            h.m.cmd_tgl   = ~h.m.cmd_tgl;
            @(h.m.rsp_tgl);
            value = h.m.rsp_rdata;
        end
    endtask

    task desc(input integer idx, input [63:0] addr, input [31:0] len, input [15:0] flags, input [15:0] nxt);
        begin
            `MEMW(DESC + 16 * idx, addr[31:0], 32'hf);
            `MEMW(DESC + 16 * idx + 4, addr[63:32], 32'hf);
            `MEMW(DESC + 16 * idx + 8, len, 32'hf);
            `MEMW(DESC + 16 * idx + 12, {nxt, flags}, 32'hf);
        end
    endtask

    initial begin
        if (!$value$plusargs("n=%d", n))
            n = 100;
        if ($value$plusargs("latency=%d", lat))            // media latency per request, in clocks
            latency = lat[15:0];
        if ($value$plusargs("stall=%d", knob))             // back-pressure, as tb_harness's stall input
            stall = knob[7:0];
        errors = 0;
        `ANON(0, HOST, 64'h0100_0000);
        `ANON(1, 64'd0, 64'd2048 * 512);
        repeat (4) @(posedge clk);
        rst_n = 1'b1;
        @(posedge clk);

        mmio(32'h070, 32'd0, 4'hf);                          // reset, ACKNOWLEDGE, DRIVER
        mmio(32'h070, 32'd1, 4'hf);
        mmio(32'h070, 32'd3, 4'hf);
        mmio(32'h024, 32'd1, 4'hf);                          // VERSION_1
        mmio(32'h020, 32'd1, 4'hf);
        mmio(32'h024, 32'd0, 4'hf);                          // FLUSH
        mmio(32'h020, 32'h200, 4'hf);
        mmio(32'h070, 32'd11, 4'hf);                         // FEATURES_OK
        mmio(32'h070, 32'd0, 4'h0);
        if (value != 32'd11) errors = errors + 1;
        mmio(32'h030, 32'd0, 4'hf);
        mmio(32'h038, 32'd16, 4'hf);
        mmio(32'h080, DESC[31:0], 4'hf);
        mmio(32'h084, 32'd0, 4'hf);
        mmio(32'h090, AVAIL[31:0], 4'hf);
        mmio(32'h094, 32'd0, 4'hf);
        mmio(32'h0a0, USED[31:0], 4'hf);
        mmio(32'h0a4, 32'd0, 4'hf);
        mmio(32'h044, 32'd1, 4'hf);
        mmio(32'h070, 32'd15, 4'hf);                         // DRIVER_OK

        desc(0, HDR, 32'd16, 16'd1, 16'd1);                  // header -> 4 KiB data -> status
        desc(1, DATA, 32'd4096, 16'd3, 16'd2);
        desc(2, STAT, 32'd1, 16'd2, 16'd0);
        `MEMW(AVAIL, 32'd0, 32'hf);                          // every ring entry stays 0: head 0

        for (i = 0; i < n; i = i + 1) begin
            `MEMW(HDR, 32'd0, 32'hf);                        // VIRTIO_BLK_T_IN
            `MEMW(HDR + 8, (i * 8) % 2040, 32'hf);
            `MEMW(HDR + 12, 32'd0, 32'hf);
            `MEMW(STAT, 32'hff, 32'h1);
            `MEMW(AVAIL, (i + 1) << 16, 32'hc);              // avail.idx
            mmio(32'h050, 32'd0, 4'hf);                      // notify
            wait (irq == 1'b1);
            mmio(32'h060, 32'd0, 4'h0);
            mmio(32'h064, value, 4'hf);
            mmio(32'h070, 32'd0, 4'h0);
            if ((`MEMR(STAT) & 32'hff) != 32'd0) errors = errors + 1;
        end
        $display("BENCH cycles=%0d requests=%0d errors=%0d", cycles, n, errors);
        $finish;
    end
endmodule

`default_nettype wire
