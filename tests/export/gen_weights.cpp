// Writes the export round trip's headers: gen_weights <dir> exports the trained models of
// models.hpp as <dir>/cnn_weights.hpp and <dir>/mlp_weights.hpp (graft::export_header).
#include <cstdio>
#include <string>

#include "models.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_weights <output dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  graft::export_header(*export_models::trained<export_models::cnn_t>(), dir + "/cnn_weights.hpp",
                       "cnn_weights");
  graft::export_header(*export_models::trained<export_models::mlp_t>(), dir + "/mlp_weights.hpp",
                       "mlp_weights");
  return 0;
}
