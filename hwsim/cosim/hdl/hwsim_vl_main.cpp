// The simulator main of every cocotb Verilator build (runner.py uses it in place of cocotb's own).
//
// Same scheduling contract with cocotb's GPI as cocotb's main: per time slot, evaluate until nothing is
// left to do, value-change callbacks after every evaluation and after every callback that may have
// written a signal, then ReadWrite, ReadOnly, the next time slot (the model's own events or a cocotb
// timer, whichever is first), NextSimTime and the timed callbacks. What differs is only the cost of a time
// slot in which no callback runs, the common case when the clock is in HDL and Python waits on one
// trigger per transaction: the value-change list is scanned again only after a callback actually ran,
// ReadWrite and ReadOnly are dispatched only when one is registered, the context's time is kept current
// (Verilator's runtime otherwise asks sc_time_stamp() on every query), and the model runs one thread
// (the default context would start a worker per CPU, idle for this single-threaded model, and a process
// with a second thread pays for locking in every malloc and VerilatedMutex).
// On the virtio-blk controller, cocotb's main spent about a fifth of a QD1 read in this per-slot
// bookkeeping (docs/performance.md).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE && VM_TRACE_FST
#include "verilated_fst_c.h"
using TraceFile = VerilatedFstC;
#elif VM_TRACE
#include "verilated_vcd_c.h"
using TraceFile = VerilatedVcdC;
#endif

extern "C" void vlog_startup_routines_bootstrap(void);  // libcocotbvpi_verilator: loads cocotb

static uint64_t sim_time = 0;
double sc_time_stamp() { return static_cast<double>(sim_time); }

namespace {

#if VM_TRACE
TraceFile* trace_file = nullptr;
#endif

// Value-change callbacks until none fires any more (a callback may write signals that others watch);
// true if any ran.
bool settle() {
    if (!VerilatedVpi::callValueCbs()) return false;
    while (VerilatedVpi::callValueCbs()) {
    }
    return true;
}

void finish() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (trace_file) trace_file->close();
#endif
}

}  // namespace

int main(int argc, char** argv) {
    const char* trace_name = VM_TRACE_FST ? "dump.fst" : "dump.vcd";
    bool trace_on = false;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--trace") trace_on = true;
        else if (arg == "--trace-file" && i + 1 < argc) trace_name = argv[++i];
    }
    VerilatedContext* const context = Verilated::threadContextp();
    context->threads(1);
    context->commandArgs(argc, argv);
    const std::unique_ptr<Vtop> top{new Vtop{""}};
    Verilated::fatalOnVpiError(false);  // cocotb's system tasks are not Verilator's
#if VM_TRACE
    Verilated::traceEverOn(true);
    if (trace_on) {
        trace_file = new TraceFile;
        top->trace(trace_file, 99);
        trace_file->open(trace_name);
    }
#else
    (void)trace_on;
    (void)trace_name;
#endif
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { finish(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle();

    const uint64_t never = ~0ULL;
    while (!Verilated::gotFinish()) {
        do {
            bool ran;  // a callback ran since the last doInertialPuts: it may have queued puts
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                ran = settle();
            } while (VerilatedVpi::evalNeeded());
            if (VerilatedVpi::hasCbs(cbReadWriteSynch) && VerilatedVpi::callCbs(cbReadWriteSynch)) ran = true;
            if (ran) {  // nothing ran: no put is queued and no signal moved since the scan above
                VerilatedVpi::doInertialPuts();  // those a value-change or ReadWrite callback queued
                settle();
            }
        } while (VerilatedVpi::evalNeeded());
        top->eval_end_step();
        if (VerilatedVpi::hasCbs(cbReadOnlySynch)) VerilatedVpi::callCbs(cbReadOnlySynch);
#if VM_TRACE
        if (trace_file) trace_file->dump(sim_time);
#endif
        const uint64_t next_model = top->eventsPending() ? top->nextTimeSlot() : never;
        const uint64_t next = std::min<uint64_t>(next_model, VerilatedVpi::cbNextDeadline());
        if (next == never) break;  // nothing scheduled any more: the simulation is over
        sim_time = next;
        context->time(next);
        if (VerilatedVpi::callCbs(cbNextSimTime)) settle();
        // Timed callbacks only when one is due (callCbs would otherwise walk the future list for nothing);
        // the deadline is read after NextSimTime's callbacks, which may have registered one for now.
        if ((VerilatedVpi::hasCbs(cbAfterDelay) || VerilatedVpi::cbNextDeadline() <= next)
            && VerilatedVpi::callCbs(cbAfterDelay))
            settle();
    }
    top->final();
    finish();
    return context->errorCount() > 0 ? 1 : 0;
}
