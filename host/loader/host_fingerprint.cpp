// The one host translation unit that sees LibTorch's version header: the fingerprint must be
// computed with the same macros the plugins use (see <jepa/sdk/fingerprint.hpp>).
#include "loader/registry.hpp"

#include <jepa/sdk/fingerprint.hpp>

namespace jepa::loader {

Fingerprint host_fingerprint() {
  return Fingerprint::from_c(jepa::sdk::build_fingerprint());
}

}  // namespace jepa::loader
