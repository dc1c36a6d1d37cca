// The pure-HDL speed baseline of dmacopy (no cocotb): the same instances as tb_dmacopy; a Verilog task
// plays the driver through the same HDL master (hierarchical references to its command port) and runs
// +copies=N copies of +bytes=B bytes between two buffers of anonymous shim memory, waiting on irq.
`timescale 1ns/1ps
`default_nettype none

module tb_dmacopy_bench;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;
    wire irq;
    dmacopy_system sys (.clk(clk), .rst(rst), .irq(irq));
    import "DPI-C" function int hwsim_dpi_anon(input int space, input longint base, input longint size);

    localparam [63:0] BASE = 64'h8000_0000;
    integer copies, nbytes, i, ok;
    reg [63:0] cycles = 64'd0;
    always @(posedge clk) cycles <= cycles + 64'd1;

    task mmio(input [31:0] addr, input [31:0] data, input [3:0] strb);
        begin
            sys.m_axil.cmd_addr  = addr;
            sys.m_axil.cmd_wdata = data;
            sys.m_axil.cmd_wstrb = strb;
            sys.m_axil.cmd_tgl   = ~sys.m_axil.cmd_tgl;
            @(sys.m_axil.rsp_tgl);
        end
    endtask

    initial begin
        if (!$value$plusargs("copies=%d", copies)) copies = 100;
        if (!$value$plusargs("bytes=%d", nbytes)) nbytes = 4096;
        ok = hwsim_dpi_anon(2, BASE, 64'h0010_0000);
        #45 rst = 1'b0;
        #10;
        mmio(32'h1c, 32'd1, 4'hf);                        // CTRL.IRQ_EN
        for (i = 0; i < copies; i = i + 1) begin
            mmio(32'h00, BASE[31:0], 4'hf);               // SRC_LO
            mmio(32'h04, 32'd0, 4'hf);
            mmio(32'h08, BASE[31:0] + 32'h0008_0000, 4'hf);  // DST_LO
            mmio(32'h0c, 32'd0, 4'hf);
            mmio(32'h10, nbytes, 4'hf);                   // LEN
            mmio(32'h14, 32'd1, 4'hf);                    // CMD.GO
            if (!irq) @(posedge irq);
            mmio(32'h18, 32'h3, 4'hf);                    // clear DONE, ERR
        end
        $display("dmacopy bench: %0d copies of %0d bytes in %0d cycles", copies, nbytes, cycles);
        $finish;
    end
endmodule

`default_nettype wire
