// The memory shim's calls from HDL (include inside a module body): SHM_READ(space, addr) is the 32-bit
// word at byte address addr, SHM_WRITE(space, addr, data, strb) writes it under byte strobes,
// SHM_INSIDE(space, addr, nbytes) is 1 when those bytes are attached memory, SHM_ERROR(space) counts an
// error response. DPI-C under Verilator, VPI system functions under Icarus (hwsim_shm.c).
`ifdef VERILATOR
    import "DPI-C" function int hwsim_dpi_read(input int space, input longint addr);
    import "DPI-C" function void hwsim_dpi_write(input int space, input longint addr, input int data,
                                                 input int strb);
    import "DPI-C" function int hwsim_dpi_inside(input int space, input longint addr, input int n);
    import "DPI-C" function void hwsim_dpi_error(input int space);
`define SHM_READ(s, a)           hwsim_dpi_read(s, a)
`define SHM_WRITE(s, a, d, strb) hwsim_dpi_write(s, a, d, strb)
`define SHM_INSIDE(s, a, n)      hwsim_dpi_inside(s, a, n)
`define SHM_ERROR(s)             hwsim_dpi_error(s)
`else
`define SHM_READ(s, a)           $hwsim_read(s, a)
`define SHM_WRITE(s, a, d, strb) $hwsim_write(s, a, d, strb)
`define SHM_INSIDE(s, a, n)      $hwsim_inside(s, a, n)
`define SHM_ERROR(s)             $hwsim_error(s)
`endif
