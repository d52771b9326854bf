#include "adapter/score/ubjson.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstring>

namespace fra::score {
namespace {

constexpr int kMaxDepth = 128;

struct Failure {
  std::string what;
};

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}

  bool operator()(rapidjson::Document& h) {
    value(h, take(), 0);
    skip_noop();
    if (pos_ != b_.size()) fail("trailing bytes after the value");
    return true;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Failure{fmt::format("UBJSON at byte {}: {}", pos_, what)};
  }

  char take() {
    if (pos_ >= b_.size()) fail("unexpected end of input");
    return b_[pos_++];
  }

  void skip_noop() {
    while (pos_ < b_.size() && b_[pos_] == 'N') ++pos_;
  }

  template <typename T>
  T big_endian() {
    if (b_.size() - pos_ < sizeof(T)) fail("unexpected end of input");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    if constexpr (std::endian::native == std::endian::little) {
      if constexpr (sizeof(T) == 2)
        v = std::bit_cast<T>(__builtin_bswap16(std::bit_cast<std::uint16_t>(v)));
      if constexpr (sizeof(T) == 4)
        v = std::bit_cast<T>(__builtin_bswap32(std::bit_cast<std::uint32_t>(v)));
      if constexpr (sizeof(T) == 8)
        v = std::bit_cast<T>(__builtin_bswap64(std::bit_cast<std::uint64_t>(v)));
    }
    return v;
  }

  std::int64_t integer(char marker) {
    switch (marker) {
      case 'i':
        return big_endian<std::int8_t>();
      case 'U':
        return big_endian<std::uint8_t>();
      case 'I':
        return big_endian<std::int16_t>();
      case 'l':
        return big_endian<std::int32_t>();
      case 'L':
        return big_endian<std::int64_t>();
      default:
        fail(fmt::format("expected an integer marker, got 0x{:02x}",
                         static_cast<unsigned char>(marker)));
    }
  }

  // A length or count: a non-negative integer no larger than what is left of the input.
  std::size_t length() {
    std::int64_t n = integer(take());
    if (n < 0 || static_cast<std::uint64_t>(n) > b_.size() - pos_)
      fail("length larger than the input");
    return static_cast<std::size_t>(n);
  }

  std::string_view bytes(std::size_t n) {
    if (b_.size() - pos_ < n) fail("unexpected end of input");
    auto s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  void string(rapidjson::Document& h, bool key) {
    auto s = bytes(length());
    auto n = static_cast<rapidjson::SizeType>(s.size());
    if (key)
      h.Key(s.data(), n, true);
    else
      h.String(s.data(), n, true);
  }

  void value(rapidjson::Document& h, char marker, int depth) {
    while (marker == 'N') marker = take();
    switch (marker) {
      case 'Z':
        h.Null();
        return;
      case 'T':
        h.Bool(true);
        return;
      case 'F':
        h.Bool(false);
        return;
      case 'i':
      case 'U':
      case 'I':
      case 'l':
        h.Int(static_cast<int>(integer(marker)));
        return;
      case 'L':
        h.Int64(integer(marker));
        return;
      case 'd':
        h.Double(static_cast<double>(big_endian<float>()));
        return;
      case 'D':
        h.Double(big_endian<double>());
        return;
      case 'C': {
        char c = take();
        h.String(&c, 1, true);
        return;
      }
      case 'S':
        string(h, false);
        return;
      case 'H': {
        auto s = std::string(bytes(length()));
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0') fail("malformed high-precision number");
        h.Double(d);
        return;
      }
      case '[':
        container(h, false, depth + 1);
        return;
      case '{':
        container(h, true, depth + 1);
        return;
      default:
        fail(fmt::format("unknown marker 0x{:02x}", static_cast<unsigned char>(marker)));
    }
  }

  void container(rapidjson::Document& h, bool object, int depth) {
    if (depth > kMaxDepth) fail("nested too deeply");
    char type = 0;
    std::size_t count = 0;
    bool counted = false;
    if (pos_ < b_.size() && b_[pos_] == '$') {
      ++pos_;
      type = take();
      if (pos_ >= b_.size() || b_[pos_] != '#') fail("a typed container must give its count");
    }
    if (pos_ < b_.size() && b_[pos_] == '#') {
      ++pos_;
      count = length_of_count(type);
      counted = true;
    }
    if (object)
      h.StartObject();
    else
      h.StartArray();
    rapidjson::SizeType n = 0;
    for (;; ++n) {
      if (counted) {
        if (n == count) break;
      } else {
        skip_noop();
        if (pos_ < b_.size() && b_[pos_] == (object ? '}' : ']')) {
          ++pos_;
          break;
        }
      }
      if (object) string(h, true);
      value(h, type != 0 ? type : take(), depth);
    }
    if (object)
      h.EndObject(n);
    else
      h.EndArray(n);
  }

  // A count of elements: each takes at least one byte unless the type is fixed and sizeless.
  std::size_t length_of_count(char type) {
    std::int64_t n = integer(take());
    std::size_t min_size = 1;
    if (type == 'Z' || type == 'T' || type == 'F' || type == 'N') min_size = 0;
    if (n < 0 || (min_size > 0 && static_cast<std::uint64_t>(n) > b_.size() - pos_) ||
        (min_size == 0 && n > (1 << 20)))
      fail("count larger than the input");
    return static_cast<std::size_t>(n);
  }

  std::string_view b_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string ubjson_to_document(std::string_view bytes, rapidjson::Document& doc) {
  try {
    Reader reader(bytes);
    doc.Populate(reader);
  } catch (const Failure& f) {
    doc.SetNull();
    return f.what;
  }
  return "";
}

bool looks_like_ubjson(std::string_view b) {
  std::size_t i = 0;
  while (i < b.size() && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) ++i;
  if (i + 1 >= b.size() || b[i] != '{') return false;
  char next = b[i + 1];
  return next == 'i' || next == 'U' || next == 'I' || next == 'l' || next == 'L' || next == '$' ||
         next == '#' || next == '}' || next == 'N';
}

}  // namespace fra::score
