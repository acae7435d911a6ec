#include <graft/graft.hpp>
#ifdef GRAFT_HAVE_LIBCSV  // graft::libcsv found libcsv on this machine (graftConfig.cmake)
#include <graft/data/csv.hpp>
#endif
#ifdef GRAFT_HAVE_UTF8PROC  // graft::utf8proc found libutf8proc on this machine (graftConfig.cmake)
#include <graft/data/words.hpp>
#endif
namespace g = graft;
using mlp = g::stack<g::input<4>, g::dense<8>, g::relu>;
using net_t = g::model<mlp, g::classifier<3>>;
static_assert(net_t::parameter_count == 4 * 8 + 8 + 8 * 3 + 3);
int main() {
  auto net = g::make_model<net_t>(g::seed{1});
  g::runner<net_t, 1> r;
  for (int i = 0; i < 4; ++i) r.input()[i] = 0.5f;
  const float* z = r.forward(*net, 1);
#ifdef GRAFT_HAVE_LIBCSV
  const char csv[] = "a,b,c,d,label\n1,2,3,4,0\n5,6,7,8,2\n";
  const auto d = g::data::parse_csv("consumer.csv", reinterpret_cast<const unsigned char*>(csv),
                                    sizeof csv - 1);
  if (d.size() != 2 || d.sample_size() != 4) return 2;
#endif
#ifdef GRAFT_HAVE_UTF8PROC
  const char list[] = "Caf\xC3\xA9\nab\n";  // NFC, lowercased; "ab" is too short
  const auto words =
      g::text::parse_word_list("consumer.txt", reinterpret_cast<const unsigned char*>(list),
                               sizeof list - 1, g::text::text_encoding::utf8);
  if (words.size() != 1 || words[0] != U"caf\u00E9") return 3;
#endif
  return z[0] == z[0] ? 0 : 1;
}
