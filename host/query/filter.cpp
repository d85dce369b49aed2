#include "query/filter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>

namespace jepa::query {
namespace {

const char* const kColumns[] = {"id", "name", "status", "reason", "seed", "sweep", "steps", "started_at", "ended_at"};

bool is_numeric_column(const std::string& c) {
  return c == "id" || c == "seed" || c == "steps";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return s;
}

std::optional<double> as_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

struct Token {
  enum class Kind { word, string, op, lparen, rparen, and_, or_, not_, end };
  Kind kind = Kind::end;
  std::string text;
  size_t pos = 0;  // 0-based offset in the filter text
};

bool word_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '/' || ch == ':' ||
         ch == '-' || ch == '+' || ch == '@' || ch == '[' || ch == ']' || ch == ',';
}

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) { tokenize(); }

  SqlFilter parse() {
    SqlFilter f;
    if (tokens_.size() == 1) return f;  // only the end token: no condition
    f.sql = expr(f.binds);
    if (peek().kind != Token::Kind::end) error(peek().pos, fmt::format("unexpected '{}'", peek().text));
    return f;
  }

 private:
  [[noreturn]] void error(size_t pos, const std::string& what) const {
    throw FilterError(
        fmt::format("--where: {} at column {}\n  {}\n  {}^", what, pos + 1, text_, std::string(pos, ' ')));
  }

  void tokenize() {
    size_t i = 0;
    const size_t n = text_.size();
    while (i < n) {
      const char ch = text_[i];
      if (std::isspace(static_cast<unsigned char>(ch))) {
        ++i;
        continue;
      }
      Token t;
      t.pos = i;
      if (ch == '(' || ch == ')') {
        t.kind = ch == '(' ? Token::Kind::lparen : Token::Kind::rparen;
        t.text = std::string(1, ch);
        ++i;
      } else if (ch == '\'' || ch == '"' || ch == '`') {
        t.kind = Token::Kind::string;
        ++i;
        for (;;) {
          if (i >= n) error(t.pos, "unterminated quoted string");
          if (text_[i] == ch) {
            if (i + 1 < n && text_[i + 1] == ch) {  // a doubled quote stands for itself
              t.text += ch;
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          t.text += text_[i++];
        }
      } else if (ch == '&' || ch == '|') {
        if (i + 1 >= n || text_[i + 1] != ch) error(i, fmt::format("'{}' alone; write '{}{}' or the word", ch, ch, ch));
        t.kind = ch == '&' ? Token::Kind::and_ : Token::Kind::or_;
        t.text = std::string(2, ch);
        i += 2;
      } else if (ch == '=' || ch == '!' || ch == '<' || ch == '>') {
        t.kind = Token::Kind::op;
        t.text = std::string(1, ch);
        ++i;
        if (i < n && (text_[i] == '=' || (ch == '<' && text_[i] == '>'))) t.text += text_[i++];
        if (t.text == "!") error(t.pos, "'!' alone; write '!='");
        if (t.text == "==") t.text = "=";
        if (t.text == "<>") t.text = "!=";
      } else if (word_char(ch)) {
        while (i < n && word_char(text_[i])) t.text += text_[i++];
        const std::string w = lower(t.text);
        t.kind = Token::Kind::word;
        if (w == "and") t.kind = Token::Kind::and_;
        if (w == "or") t.kind = Token::Kind::or_;
        if (w == "not") t.kind = Token::Kind::not_;
        if (w == "like") {
          t.kind = Token::Kind::op;
          t.text = "LIKE";
        }
      } else {
        error(i, fmt::format("unexpected character '{}'", ch));
      }
      tokens_.push_back(std::move(t));
    }
    Token end;
    end.pos = n;
    tokens_.push_back(end);
  }

  const Token& peek() const { return tokens_[at_]; }
  const Token& next() { return tokens_[at_ < tokens_.size() - 1 ? at_++ : at_]; }

  std::string expr(std::vector<store::SqlValue>& binds) {
    std::string s = and_expr(binds);
    while (peek().kind == Token::Kind::or_) {
      next();
      s = fmt::format("({} OR {})", s, and_expr(binds));
    }
    return s;
  }

  std::string and_expr(std::vector<store::SqlValue>& binds) {
    std::string s = not_expr(binds);
    while (peek().kind == Token::Kind::and_) {
      next();
      s = fmt::format("({} AND {})", s, not_expr(binds));
    }
    return s;
  }

  std::string not_expr(std::vector<store::SqlValue>& binds) {
    if (peek().kind == Token::Kind::not_) {
      next();
      return fmt::format("(NOT {})", not_expr(binds));
    }
    if (peek().kind == Token::Kind::lparen) {
      const size_t open = next().pos;
      std::string s = expr(binds);
      if (peek().kind != Token::Kind::rparen) error(open, "this '(' is never closed");
      next();
      return s;
    }
    return comparison(binds);
  }

  std::string comparison(std::vector<store::SqlValue>& binds) {
    const Token field_tok = next();
    if (field_tok.kind != Token::Kind::word && field_tok.kind != Token::Kind::string) {
      error(field_tok.pos, field_tok.kind == Token::Kind::end
                               ? "expected a field (e.g. linear_probe/top1 > 70)"
                               : fmt::format("expected a field, not '{}'", field_tok.text));
    }
    Field field;
    try {
      field = resolve_field(field_tok.text);
    } catch (const FilterError& e) {
      error(field_tok.pos, e.what());
    }
    const Token op = next();
    if (op.kind != Token::Kind::op) {
      error(op.pos, fmt::format("expected a comparison (= != < <= > >= like) after '{}'", field_tok.text));
    }
    const Token value = next();
    if (value.kind != Token::Kind::word && value.kind != Token::Kind::string) {
      error(value.pos, fmt::format("expected a value after '{}'", op.text));
    }
    const std::optional<double> number =
        value.kind == Token::Kind::word ? as_number(value.text) : std::optional<double>();
    const std::string& o = op.text;

    switch (field.kind) {
      case Field::Kind::metric: {
        if (!number) error(value.pos, fmt::format("metric '{}' compares with a number", field.key));
        if (o == "LIKE") error(op.pos, "'like' compares text; metrics are numbers");
        binds.emplace_back(field.key);
        binds.emplace_back(*number);
        return fmt::format(
            "EXISTS (SELECT 1 FROM metric_summary s WHERE s.run_id = r.id AND s.key = ? AND s.last_value {} ?)", o);
      }
      case Field::Kind::param: {
        binds.emplace_back(field.key);
        if (number && o != "LIKE") {
          binds.emplace_back(*number);
          // Only values that read as numbers take part in a numeric comparison.
          return fmt::format(
              "EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ? AND p.value GLOB '[-+0-9.]*' "
              "AND CAST(p.value AS REAL) {} ?)",
              o);
        }
        binds.emplace_back(value.text);
        return fmt::format("EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ? AND p.value {} ?)", o);
      }
      case Field::Kind::column:
        break;
    }
    const std::string& c = field.key;
    if (c == "sweep") {
      if (o != "=" && o != "!=") error(op.pos, "sweep compares with = or != (a sweep name or id)");
      binds.emplace_back(value.text);
      binds.emplace_back(value.text);
      const char* in = "r.sweep_id IN (SELECT id FROM sweeps WHERE name = ? OR CAST(id AS TEXT) = ?)";
      return o == "=" ? fmt::format("({})", in) : fmt::format("(r.sweep_id IS NULL OR NOT {})", in);
    }
    if (is_numeric_column(c)) {
      if (!number) error(value.pos, fmt::format("'{}' compares with a number", c));
      if (o == "LIKE") error(op.pos, fmt::format("'like' compares text; '{}' is a number", c));
      binds.emplace_back(*number);
    } else {
      binds.emplace_back(c == "status" ? upper(value.text) : value.text);
    }
    return fmt::format("{} {} ?", column_sql(c), o);
  }

  const std::string& text_;
  std::vector<Token> tokens_;
  size_t at_ = 0;
};

}  // namespace

Field resolve_field(const std::string& text) {
  auto prefixed = [&](const char* prefix) {
    const size_t n = std::char_traits<char>::length(prefix);
    return text.size() > n && text.compare(0, n, prefix) == 0 ? std::optional<std::string>(text.substr(n))
                                                              : std::nullopt;
  };
  if (auto k = prefixed("metric:")) return {Field::Kind::metric, *k};
  if (auto k = prefixed("param:")) return {Field::Kind::param, *k};
  std::optional<std::string> column = prefixed("run:");
  if (!column && text.find('/') != std::string::npos) return {Field::Kind::metric, text};
  if (!column && text.find('.') != std::string::npos) return {Field::Kind::param, text};
  const std::string c = lower(column.value_or(text));
  for (const char* known : kColumns) {
    if (c == known) return {Field::Kind::column, c};
  }
  throw FilterError(fmt::format(
      "unknown field '{}': a run column is one of id, name, status, reason, seed, sweep, steps, started_at, ended_at; "
      "metrics hold a '/' (linear_probe/top1), parameters a '.' (optimization.lr)",
      text));
}

std::string column_sql(const std::string& column) {
  if (column == "steps") return "r.last_step";
  if (column == "sweep") return "r.sweep_id";
  return "r." + column;
}

SqlFilter parse_filter(const std::string& text) {
  return Parser(text).parse();
}

}  // namespace jepa::query
