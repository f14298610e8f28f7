// Files written atomically and durably, so that a path holds either its old or its new complete
// contents, whenever the writer is killed and after a power loss: the bytes go to an unnamed file
// in the target's directory (O_TMPFILE: a writer killed meanwhile leaves nothing behind), which is
// fsynced, linked under a temporary name, renamed over the target, and the directory fsynced.
// Layer: core.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tg {

// Writes the concatenation of `pieces` to `path`. Throws tg::Error naming `op` and the path when
// the directory is missing or not writable, or a write, sync or rename fails; the old file, if
// any, is then untouched. Where the file system has no O_TMPFILE the temporary file is named
// "<path>.tmp.<pid>" from the start. Temporaries that killed writers left (their pid is gone)
// are removed by the next write of the same path.
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& pieces,
                           std::string_view op);

}  // namespace tg
