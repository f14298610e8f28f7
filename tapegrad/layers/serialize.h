// State dicts as safetensors files: an 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets}}, plus "__metadata__"), then the raw little-endian data,
// so PyTorch's and numpy's tools read them. Saving is atomic and durable (core/atomic_file.h): the
// file is the old or the new complete one, whenever the program is killed. Loading is strict and
// all-or-nothing, and any file, however damaged, gives tg::Error. Layer: layers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tapegrad/layers/module.h"

namespace tg {

// Writes the module's parameters and buffers (its state_dict).
void save(const nn::Module& module, const std::string& path);

struct LoadOptions {
  bool strict = true;  // missing or unexpected keys are errors
};
// What a load left out: the module's keys the checkpoint lacks and the checkpoint's keys the
// module lacks (PyTorch's _IncompatibleKeys), each in its owner's order. Empty after a strict load.
struct IncompatibleKeys {
  std::vector<std::string> missing_keys, unexpected_keys;
};
// Reads a checkpoint into the module's own tensors (in place, so members like `weight` see the
// values). Throws naming the file when it is missing, truncated or malformed, listing every
// shape or dtype mismatch ("1.weight: checkpoint [6], model [10, 784]") and, when strict, every
// missing and unexpected key; on any error the module is unchanged. Not strict, the keys present
// on both sides are loaded and the others returned, as load_state_dict(strict=False).
IncompatibleKeys load(nn::Module& module, const std::string& path, LoadOptions options = {});

using Metadata = std::map<std::string, std::string>;
void save_tensors(const nn::NamedTensors& tensors, const std::string& path, const Metadata& metadata = {});
// Every tensor of a safetensors file (contiguous copies), in the file's data order. F32, F64
// and I64 entries load as they are, F16 and BF16 converted to float32; any other dtype throws
// "unsupported dtype X".
nn::NamedTensors load_tensors(const std::string& path, Metadata* metadata = nullptr);
// Copies a checkpoint's tensors into `targets` by name, as load(module) does.
IncompatibleKeys load_into(const nn::NamedTensors& targets, const nn::NamedTensors& checkpoint,
                           const std::string& path, LoadOptions options = {});

}  // namespace tg
