// Verilator harness of the tile engine (rtl/engine.py): the engine runs free in compiled C++, the
// host talks to it over a line protocol on stdin/stdout (rtl/harness.py), so no Python runs per cycle.
//
// Commands (whitespace-separated tokens; hex words without 0x, lane 0 in the low bits):
//   L <sel> <count> <word>...     load count words into memory sel (0 A, 1 B, 2 params) from address 0
//   R <integers>                  run (a layer or one chunk of it) with the config ports in the order of
//                                 rtl.layout.config_ports (config_ports.h, generated per engine), then
//                                 stream cfg_beats results back; answers "C <cycles> <beats> <word>..."
//   S                             answers "S <driven cycles> <free cycles> <free seconds>"
//   Q                             quit
// Built with HWSIM_WAVES (Verilator --trace), the first argument names a VCD file that gets every
// cycle of the run (hwsim rtl sim --waves).
// Errors answer "E <message>" and exit 1. The top module is compiled in as class Vtop (--prefix Vtop).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"
#ifdef HWSIM_WAVES
#include "verilated_vcd_c.h"
#endif

namespace {

Vtop* top = nullptr;
}  // namespace

#include "config_ports.h"  // kConfigPorts, the k<Port> indexes, set_config(): written by rtl/harness.py

namespace {
uint64_t driven_cycles = 0, free_cycles = 0;
double free_seconds = 0;
#ifdef HWSIM_WAVES
VerilatedVcdC* waves = nullptr;
uint64_t now = 0;
#endif

void tick() {
  top->clk = 1;
  top->eval();
#ifdef HWSIM_WAVES
  if (waves) waves->dump(now++);
#endif
  top->clk = 0;
  top->eval();
#ifdef HWSIM_WAVES
  if (waves) waves->dump(now++);
#endif
}

[[noreturn]] void fail(const std::string& why) {
  std::cout << "E " << why << std::endl;
  std::exit(1);
}

uint32_t hex32(const std::string& hex, size_t word) {  // 32-bit chunk `word` counted from the right
  if (hex.size() <= word * 8) return 0;
  size_t end = hex.size() - word * 8;
  size_t start = end >= 8 ? end - 8 : 0;
  return static_cast<uint32_t>(std::stoul(hex.substr(start, end - start), nullptr, 16));
}

template <typename T>
void set_port(T& port, const std::string& hex) {
  uint64_t v = (static_cast<uint64_t>(hex32(hex, 1)) << 32) | hex32(hex, 0);
  port = static_cast<T>(v);
}

template <std::size_t N>
void set_port(VlWide<N>& port, const std::string& hex) {
  for (std::size_t i = 0; i < N; ++i) port[i] = hex32(hex, i);
}

template <typename T>
std::string get_port(const T& port) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(port));
  return buf;
}

template <std::size_t N>
std::string get_port(const VlWide<N>& port) {
  std::string out;
  char buf[16];
  for (std::size_t i = N; i-- > 0;) {
    std::snprintf(buf, sizeof buf, out.empty() ? "%x" : "%08x", static_cast<unsigned>(port[i]));
    if (!out.empty() || port[i] != 0 || i == 0) out += buf;
  }
  return out;
}

void load(std::istream& in) {
  unsigned sel;
  uint64_t count;
  if (!(in >> sel >> count)) fail("L: expected <sel> <count>");
  top->ld_sel = sel;
  top->ld_valid = 1;
  std::string word;
  for (uint64_t addr = 0; addr < count; ++addr) {
    if (!(in >> word)) fail("L: fewer words than its count");
    top->ld_addr = static_cast<uint32_t>(addr);
    set_port(top->ld_data, word);
    if (!top->ld_ready) fail("the engine refused a load while idle");
    tick();
  }
  top->ld_valid = 0;
  driven_cycles += count;
}

void run(std::istream& in) {
  long long cfg[kConfigPorts];
  for (auto& v : cfg)
    if (!(in >> v)) fail("R: expected " + std::to_string(kConfigPorts) + " integers");
  set_config(cfg);
  const uint64_t folds = static_cast<uint64_t>(cfg[kGroups] * cfg[kRowTiles] * cfg[kColTiles]);
  const uint64_t stream = static_cast<uint64_t>(std::max(cfg[kM], cfg[kK]));
  const uint64_t limit = 2 * (folds * (stream + 512) + 1024);  // rtl.layout.run_limit_cycles
  auto t0 = std::chrono::steady_clock::now();
  top->start = 1;
  tick();
  top->start = 0;
  uint64_t ran = 1;
  while (!top->done) {
    if (++ran > limit) fail("the engine did not finish within " + std::to_string(limit) + " cycles");
    tick();
  }
  free_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  free_cycles += top->cycles;
  std::vector<std::string> beats;
  top->out_ready = 1;
  for (uint64_t guard = 0; cfg[kBeats] > 0; ++guard) {
    if (guard > (1u << 26)) fail("the result stream never ended");
    if (top->out_valid) {
      beats.push_back(get_port(top->out_data));
      if (top->out_last) {
        tick();
        break;
      }
    }
    tick();
  }
  top->out_ready = 0;
  driven_cycles += beats.size();
  std::ostringstream line;
  line << "C " << top->cycles << ' ' << beats.size();
  for (const auto& b : beats) line << ' ' << b;
  std::cout << line.str() << '\n' << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  top = new Vtop;
#ifdef HWSIM_WAVES
  if (argc > 1) {
    Verilated::traceEverOn(true);
    waves = new VerilatedVcdC;
    top->trace(waves, 99);
    waves->open(argv[1]);
  }
#endif
  top->clk = 0;
  top->rst = 1;
  top->ld_valid = 0;
  top->start = 0;
  top->out_ready = 0;
  tick();
  tick();
  top->rst = 0;
  tick();
  std::string cmd;
  while (std::cin >> cmd) {
    if (cmd == "L") {
      load(std::cin);
    } else if (cmd == "R") {
      run(std::cin);
    } else if (cmd == "S") {
      std::cout << "S " << driven_cycles << ' ' << free_cycles << ' ' << free_seconds << '\n' << std::flush;
    } else if (cmd == "Q") {
      break;
    } else {
      fail("unknown command " + cmd);
    }
  }
  top->final();
#ifdef HWSIM_WAVES
  if (waves) waves->close();
#endif
  delete top;
  return 0;
}
