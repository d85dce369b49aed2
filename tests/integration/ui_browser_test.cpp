// `jepa ui` in a real browser: headless Chromium, driven through chromedriver's WebDriver
// protocol, opens the runs page and a run page of a database made by a short real training run,
// checks what they show (the run names, a drawn curve) and saves screenshots
// (<build>/ui_screenshots/; JEPA_UPDATE_SCREENSHOTS=1 also writes docs/ui_runs.png and
// docs/ui_run.png, the README's), then follows a RUNNING run's curve as points arrive. Skips
// itself, saying so, where Chromium is missing.
#include "jepa_process.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"
#include "tiny_experiment.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path program(const char* env, const char* fallback) {
  const char* e = std::getenv(env);
  return e != nullptr && *e != '\0' ? fs::path(e) : fs::path(fallback);
}

// A process of this test, stopped (SIGTERM, then SIGKILL) when the object goes away.
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& out) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<std::string> a = args;
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      std::freopen(out.c_str(), "w", stdout);
      std::freopen(out.c_str(), "a", stderr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string base64_decode(const std::string& in) {
  std::string out;
  int bits = 0;
  uint32_t acc = 0;
  for (const char ch : in) {
    int v = -1;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    if (ch == '+') v = 62;
    if (ch == '/') v = 63;
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// The few WebDriver (W3C) commands this test needs, over chromedriver's HTTP port.
class Browser {
 public:
  explicit Browser(int port) : http_("127.0.0.1", port) {
    http_.set_read_timeout(60, 0);
    for (int i = 0; i < 100 && !http_.Get("/status"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const json caps{{"capabilities",
                     {{"alwaysMatch",
                       {{"browserName", "chrome"},
                        {"goog:chromeOptions",
                         {{"binary", program("JEPA_CHROMIUM", "/usr/bin/chromium").string()},
                          {"args",
                           {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--window-size=1280,900", "--hide-scrollbars"}}}}}}}}};
    const json r = call("POST", "/session", caps);
    session_ = r["value"].value("sessionId", "");
  }
  ~Browser() {
    if (!session_.empty()) http_.Delete(("/session/" + session_).c_str());
  }
  bool ok() const { return !session_.empty(); }

  void open(const std::string& url) { call("POST", "/session/" + session_ + "/url", {{"url", url}}); }

  json script(const std::string& body) {
    return call("POST", "/session/" + session_ + "/execute/sync", {{"script", body}, {"args", json::array()}})["value"];
  }

  // Waits until the page says it has drawn its data (jepa.ready()).
  bool wait_ready(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      if (script("return document.body && document.body.dataset.ready === '1';") == json(true)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string screenshot_png() {
    return base64_decode(call("GET", "/session/" + session_ + "/screenshot", json())["value"].get<std::string>());
  }

 private:
  json call(const std::string& method, const std::string& path, const json& body) {
    auto res = method == "GET" ? http_.Get(path.c_str()) : http_.Post(path.c_str(), body.dump(), "application/json");
    if (!res) {
      ADD_FAILURE() << "chromedriver did not answer " << method << " " << path;
      return json{{"value", json::object()}};
    }
    json j = json::parse(res->body, nullptr, false);
    EXPECT_EQ(res->status, 200) << method << " " << path << ": " << res->body.substr(0, 2000);
    return j.is_discarded() ? json{{"value", json::object()}} : j;
  }

  httplib::Client http_;
  std::string session_;
};

void save(const std::string& png, const std::string& name) {
  const fs::path out = fs::path(JEPA_BUILD_DIR) / "ui_screenshots" / name;
  fs::create_directories(out.parent_path());
  std::ofstream(out, std::ios::binary) << png;
  if (std::getenv("JEPA_UPDATE_SCREENSHOTS") != nullptr) {
    std::ofstream(fs::path(JEPA_SOURCE_DIR) / "docs" / name, std::ios::binary) << png;
  }
}

TEST(UiBrowser, RunsAndRunPagesShowARealRun) {
  const fs::path chromium = program("JEPA_CHROMIUM", "/usr/bin/chromium");
  const fs::path driver = program("JEPA_CHROMEDRIVER", "/usr/bin/chromedriver");
  if (!fs::exists(chromium) || !fs::exists(driver)) {
    GTEST_SKIP() << "Chromium is missing (" << chromium << ", " << driver
                 << "): install Debian's chromium and chromium-driver to run the browser test";
  }
  jepa_test::TempDir dir("ui_browser");
  const fs::path db = dir.path() / "jepa.db";
  const fs::path file = dir.path() / "fmnist-tiny.toml";
  // Two real runs of 2 epochs (32 steps), a real linear probe: seconds each.
  std::ofstream(file) << jepa_test::tiny_experiment(dir.path(), 2, 16);
  for (const char* seed : {"3", "4"}) {
    const auto r =
        jepa_test::run_jepa("run '" + file.string() + "' --set run.seed=" + seed + " --db '" + db.string() + "'");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
  }

  Child ui({JEPA_BINARY, "ui", "--db", db.string(), "--port", "0"}, dir.path() / "ui.log");
  const std::string url = jepa_test::printed_url(dir.path() / "ui.log");
  ASSERT_FALSE(url.empty()) << jepa_test::slurp(dir.path() / "ui.log");
  const int port = free_port();
  Child chromedriver({driver.string(), "--port=" + std::to_string(port)}, dir.path() / "chromedriver.log");
  Browser browser(port);
  ASSERT_TRUE(browser.ok()) << jepa_test::slurp(dir.path() / "chromedriver.log");

  browser.open(url);
  ASSERT_TRUE(browser.wait_ready(30)) << "the runs page never finished drawing";
  EXPECT_EQ(browser.script("return document.querySelector('.error') && document.querySelector('.error').textContent;"),
            json(nullptr));
  const json names = browser.script("return [...document.querySelectorAll('a.run-name')].map(a => a.textContent);");
  EXPECT_EQ(names, json({"fmnist-tiny", "fmnist-tiny"})) << names.dump();
  const json statuses =
      browser.script("return [...document.querySelectorAll('#runs .status')].map(s => s.textContent);");
  EXPECT_EQ(statuses, json({"COMPLETED", "COMPLETED"}));
  const json header = browser.script("return [...document.querySelectorAll('#runs th')].map(t => t.textContent);");
  EXPECT_NE(header.dump().find("linear_probe/top1"), std::string::npos) << header.dump();
  save(browser.screenshot_png(), "ui_runs.png");

  browser.open(url + "runs/1");
  ASSERT_TRUE(browser.wait_ready(30)) << "the run page never finished drawing";
  EXPECT_EQ(browser.script("return document.querySelector('.error') && document.querySelector('.error').textContent;"),
            json(nullptr));
  EXPECT_EQ(browser.script("return document.getElementById('run-name').textContent;"), json("fmnist-tiny"));
  // The loss curve is a Chart.js chart holding every logged step, and its canvas has ink on it.
  const json drawn = browser.script(R"(
    const c = document.querySelector('canvas[data-metric="train/loss"]');
    if (!c) return null;
    const chart = Chart.getChart(c);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ++ink;
    return {points: chart ? chart.data.datasets[0].data.length : -1, ink, pixels: c.width * c.height,
            charts: document.querySelectorAll('canvas[data-metric]').length};)");
  ASSERT_TRUE(drawn.is_object()) << "no train/loss chart";
  EXPECT_EQ(drawn["points"], 32);  // 2 epochs x 16 steps
  EXPECT_GT(drawn["ink"].get<int64_t>(), 2000) << drawn.dump();
  EXPECT_LT(drawn["ink"].get<int64_t>(), drawn["pixels"].get<int64_t>()) << "an all-filled canvas is not a chart";
  EXPECT_GE(drawn["charts"].get<int64_t>(), 3);  // loss, lr, momentum, probe results...
  const json evals = browser.script("return document.body.textContent.includes('linear_probe');");
  EXPECT_EQ(evals, json(true));
  save(browser.screenshot_png(), "ui_run.png");

  // A RUNNING run's page follows it: points logged after the page opened appear without a
  // reload, and the page notices the end.
  jepa::store::Store store(db);
  const int64_t live = store.create_run("live-run", "{}", "x.toml", 0);
  std::vector<jepa::store::MetricPoint> points;
  for (int s = 1; s <= 5; ++s) points.push_back({"train/loss", s, 1.0 / s, 1.8e9 + s});
  store.log_metrics(live, points);
  browser.open(url + "runs/" + std::to_string(live));
  ASSERT_TRUE(browser.wait_ready(30));
  const std::string count_points = R"(
    const c = document.querySelector('canvas[data-metric="train/loss"]');
    return c && Chart.getChart(c) ? Chart.getChart(c).data.datasets[0].data.length : -1;)";
  EXPECT_EQ(browser.script(count_points), 5);
  points.clear();
  for (int s = 6; s <= 12; ++s) points.push_back({"train/loss", s, 1.0 / s, 1.8e9 + s});
  store.log_metrics(live, points);
  store.heartbeat(live, 12);
  json seen;
  for (int i = 0; i < 100 && seen != json(12); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = browser.script(count_points);
  }
  EXPECT_EQ(seen, 12) << "the curve did not follow the running run";
  store.finish_run(live, jepa::store::RunStatus::completed);
  json status;
  for (int i = 0; i < 100 && status != json("COMPLETED"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = browser.script("return document.querySelector('#summary .status').textContent;");
  }
  EXPECT_EQ(status, "COMPLETED");
}

}  // namespace
