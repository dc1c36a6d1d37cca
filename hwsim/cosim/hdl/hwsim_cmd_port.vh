// The command port every hwsim bus master holds (included inside the module body, after DATA_W).
//
// Written from outside (Python through VPI, or a Verilog bench through hierarchical references), in
// 32-bit pieces so VPI writes each one as an int: cmd_addr(_hi), cmd_wdata(_hi), cmd_wstrb (0 = read,
// else a write under these byte strobes), then flip cmd_tgl. The master flips rsp_tgl 1 ps after the
// clock edge at which the transaction is complete; rsp_rdata(_hi) and rsp_resp then hold its answer
// (rsp_resp in the protocol's own encoding) until the next one.
    reg  [31:0]         cmd_addr     /* verilator public_flat_rw */ = 32'd0;
    reg  [31:0]         cmd_addr_hi  /* verilator public_flat_rw */ = 32'd0;
    reg  [31:0]         cmd_wdata    /* verilator public_flat_rw */ = 32'd0;
    reg  [31:0]         cmd_wdata_hi /* verilator public_flat_rw */ = 32'd0;
    reg  [DATA_W/8-1:0] cmd_wstrb    /* verilator public_flat_rw */ = {DATA_W/8{1'b0}};
    reg                 cmd_tgl      /* verilator public_flat_rw */ = 1'b0;
    reg  [31:0]         rsp_rdata    /* verilator public_flat_rw */ = 32'd0;
    reg  [31:0]         rsp_rdata_hi /* verilator public_flat_rw */ = 32'd0;
    reg  [1:0]          rsp_resp     /* verilator public_flat_rw */ = 2'd0;
    reg                 rsp_tgl      /* verilator public_flat_rw */ = 1'b0;
    wire [63:0]         addr64  = {cmd_addr_hi, cmd_addr};
    wire [63:0]         wdata64 = {cmd_wdata_hi, cmd_wdata};
    wire                is_write = (cmd_wstrb != {DATA_W/8{1'b0}});
