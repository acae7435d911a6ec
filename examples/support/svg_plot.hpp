// A tiny line-chart writer (SVG): enough for the examples' learning curves, no dependency.
#pragma once
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

struct series {
  std::string label;
  std::string color;
  std::vector<double> x, y, err;  // err: half-width of the error bar (may be empty)
  bool dashed = false;
};

inline void write_svg_chart(const std::string& path, const std::string& title,
                            const std::string& xlabel, const std::string& ylabel,
                            const std::vector<series>& lines, double xmin, double xmax, double ymin,
                            double ymax) {
  const double W = 720, H = 440, l = 70, r = 200, t = 40, b = 55;
  auto X = [&](double v) { return l + (v - xmin) / (xmax - xmin) * (W - l - r); };
  auto Y = [&](double v) { return H - b - (v - ymin) / (ymax - ymin) * (H - t - b); };
  std::string s;
  char buf[512];
  auto add = [&](const char* fmt, auto... a) {
    std::snprintf(buf, sizeof buf, fmt, a...);
    s += buf;
  };
  add("<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' font-family='sans-serif' "
      "font-size='13'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
      W, H);
  add("<text x='%.0f' y='24' text-anchor='middle' font-size='15'>%s</text>\n", (W - r + l) / 2,
      title.c_str());
  for (int i = 0; i <= 5; ++i) {  // horizontal grid
    const double v = ymin + (ymax - ymin) * i / 5.0;
    add("<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", l, Y(v), W - r, Y(v));
    add("<text x='%.1f' y='%.1f' text-anchor='end'>%.0f%%</text>\n", l - 6, Y(v) + 4, 100 * v);
  }
  for (double v : lines.empty() ? std::vector<double>{} : lines.front().x) {
    add("<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", X(v), Y(ymin), X(v),
        Y(ymax));
    add("<text x='%.1f' y='%.1f' text-anchor='middle'>%.0f</text>\n", X(v), H - b + 18, v);
  }
  add("<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#333'/>\n", l,
      Y(ymax), W - r - l, Y(ymin) - Y(ymax));
  add("<text x='%.1f' y='%.1f' text-anchor='middle'>%s</text>\n", (W - r + l) / 2, H - 14,
      xlabel.c_str());
  add("<text x='18' y='%.1f' text-anchor='middle' transform='rotate(-90 18 %.1f)'>%s</text>\n",
      (H - b + t) / 2, (H - b + t) / 2, ylabel.c_str());
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const auto& L = lines[k];
    std::string pts;
    for (std::size_t i = 0; i < L.x.size(); ++i) {
      add("%.1f,%.1f ", X(L.x[i]), Y(L.y[i]));
      pts += buf;
      s.resize(s.size() - std::string(buf).size());
    }
    add("<polyline fill='none' stroke='%s' stroke-width='2.5'%s points='%s'/>\n", L.color.c_str(),
        L.dashed ? " stroke-dasharray='7,4'" : "", pts.c_str());
    for (std::size_t i = 0; i < L.x.size(); ++i) {
      add("<circle cx='%.1f' cy='%.1f' r='3.5' fill='%s'/>\n", X(L.x[i]), Y(L.y[i]),
          L.color.c_str());
      if (i < L.err.size())
        add("<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s'/>\n", X(L.x[i]),
            Y(std::max(ymin, L.y[i] - L.err[i])), X(L.x[i]), Y(std::min(ymax, L.y[i] + L.err[i])),
            L.color.c_str());
    }
    const double ly = t + 20 + 24.0 * static_cast<double>(k);
    add("<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='2.5'%s/>\n",
        W - r + 15, ly, W - r + 45, ly, L.color.c_str(), L.dashed ? " stroke-dasharray='7,4'" : "");
    add("<text x='%.1f' y='%.1f'>%s</text>\n", W - r + 52, ly + 4, L.label.c_str());
  }
  s += "</svg>\n";
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << s;
}

}  // namespace examples
