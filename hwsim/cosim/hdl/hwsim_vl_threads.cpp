// Linked into every cocotb Verilator build (runner.py): one simulation thread.
//
// cocotb's Verilator main creates the model in Verilator's default context, whose thread count defaults
// to the CPUs the process may use. The model is single-threaded, but on a 2-CPU machine the context
// still starts an idle worker thread, and a process with a second thread pays for locking in every
// malloc/free and VerilatedMutex on the simulation's hot path (measured: 4-5% of the cocotb run in
// pthread_mutex_trylock/unlock alone, which the single-threaded pure-Verilog bench does not pay). The
// thread count can only be set before the model exists, and cocotb's main offers no hook: a static
// initializer runs before main (the default context is a function-local static, so it is safe here).
#include "verilated.h"

namespace {
const bool one_thread = (Verilated::defaultContextp()->threads(1), true);
}  // namespace
