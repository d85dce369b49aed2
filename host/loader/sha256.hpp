#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

namespace jepa::loader {

// Lower-case hex SHA-256 of a file's bytes; throws std::runtime_error when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

// SHA-256 over bytes as they go by (a checkpoint hashed while it is written).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hex();  // ends the digest: lower-case hex

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace jepa::loader
