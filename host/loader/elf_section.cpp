#include "loader/elf_section.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace jepa::loader {

namespace {

class File {
 public:
  explicit File(const std::filesystem::path& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw std::runtime_error(fmt::format("cannot open {}", path.string()));
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }

  uint64_t size() const { return size_; }

  void read(uint64_t offset, void* out, uint64_t n) {
    if (offset > size_ || n > size_ - offset) {
      throw std::runtime_error(fmt::format("{}: ELF headers point past the end of the file", path_.string()));
    }
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
    if (!in_) throw std::runtime_error(fmt::format("cannot read {}", path_.string()));
  }

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

}  // namespace

std::optional<std::string> read_elf_section(const std::filesystem::path& path, std::string_view name) {
  File f(path);
  Elf64_Ehdr eh{};
  if (f.size() < sizeof eh) return std::nullopt;
  f.read(0, &eh, sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return std::nullopt;
  }
  if (eh.e_shoff == 0 || eh.e_shnum == 0 || eh.e_shentsize < sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum) {
    return std::nullopt;  // stripped of section headers: nothing to find
  }
  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  for (uint16_t i = 0; i < eh.e_shnum; ++i) {
    f.read(eh.e_shoff + static_cast<uint64_t>(i) * eh.e_shentsize, &sections[i], sizeof(Elf64_Shdr));
  }
  const Elf64_Shdr& names = sections[eh.e_shstrndx];
  std::string table(names.sh_size, '\0');
  f.read(names.sh_offset, table.data(), names.sh_size);
  for (const Elf64_Shdr& s : sections) {
    if (s.sh_name >= table.size() || s.sh_type == SHT_NOBITS) continue;
    if (std::string_view(table.c_str() + s.sh_name) != name) continue;
    std::string bytes(s.sh_size, '\0');
    f.read(s.sh_offset, bytes.data(), s.sh_size);
    return bytes;
  }
  return std::nullopt;
}

}  // namespace jepa::loader
