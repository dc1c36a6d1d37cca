// What every shim memory slave shares (included inside the module body, after hwsim_shm.vh; needs clk,
// SPACE, DATA_W, LATENCY and STALL): the run-time knobs `latency` (clocks between taking a request and
// answering it) and `stall` (0..255: the slave refuses requests on about stall/256 of the cycles,
// pseudo-randomly, for back-pressure), both public for Python; and whole-word access to the attached
// memory of shim space SPACE (hwsim_shm.c), a 64-bit word as two 32-bit ones.
    localparam BYTES = DATA_W / 8;

    reg [15:0] latency /* verilator public_flat_rw */ = LATENCY;
    reg [7:0]  stall   /* verilator public_flat_rw */ = STALL;

    reg [15:0] lfsr = 16'hace1;
    always @(posedge clk)
        lfsr <= (lfsr == 16'd0) ? 16'hace1 : {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};
    wire go_w = (stall == 8'd0) || (lfsr[7:0] >= stall);
    wire go_r = (stall == 8'd0) || (lfsr[15:8] >= stall);

    // 1 when the whole word at byte address `word` is attached memory (else: answer an error)
    function mem_inside(input [63:0] word);
        mem_inside = `SHM_INSIDE(SPACE, word, BYTES) != 0;
    endfunction

    function [DATA_W-1:0] mem_load(input [63:0] word);
        begin
            mem_load[31:0] = `SHM_READ(SPACE, word);
            if (DATA_W == 64)
                mem_load[DATA_W-1:DATA_W-32] = `SHM_READ(SPACE, word + 64'd4);
        end
    endfunction

    task mem_store(input [63:0] word, input [DATA_W-1:0] data, input [DATA_W/8-1:0] strb);
        begin
            `SHM_WRITE(SPACE, word, data[31:0], {28'd0, strb[3:0]});
            if (DATA_W == 64)
                `SHM_WRITE(SPACE, word + 64'd4, data[DATA_W-1:DATA_W-32], {28'd0, strb[BYTES-1:BYTES-4]});
        end
    endtask
