// PyTorch's default initialization of Linear and Conv2d (the same numbers for the same seed) and
// the nn::init functions. Tag [layers].
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "tapegrad.h"

#include "ref_helpers.h"

TEST_CASE("default initialization draws PyTorch's numbers for the same seed", "[layers]") {
  // torch.manual_seed(0); nn.Linear(4, 3)  /  torch.manual_seed(0); nn.Conv2d(2, 3, 2)
  tg::manual_seed(0);
  nn::Linear l(4, 3);
  ref::check_close(l.weight, {-0.003743410110473633, 0.26822179555892944, -0.4115225672721863, -0.3679695129394531,
                              -0.19257718324661255, 0.13407868146896362, -0.009906589984893799, 0.39644473791122437,
                              -0.04437202215194702, 0.1323062777519226, -0.15110653638839722, -0.09828269481658936},
                   1e-7);
  ref::check_close(l.bias, {-0.4776742458343506, -0.33114105463027954, -0.20611155033111572}, 1e-7);
  tg::manual_seed(0);
  nn::Conv2d c(2, 3, 2);
  ref::check_close(c.weight.flatten().slice(0, 0, 5),
                   {-0.0026469905860722065, 0.18966144323349, -0.2909903824329376, -0.26019373536109924,
                    -0.13617262244224548}, 1e-7);
  ref::check_close(c.bias, {-0.05698692053556442, 0.037410933524370193, 0.3201341927051544}, 1e-7);
  // Xavier: U(±gain·√(6 / (fan_in + fan_out)))
  Tensor w = tg::empty({200, 300});
  nn::init::xavier_uniform_(w);
  double a = std::sqrt(6.0 / 500.0);
  CHECK(w.max().item<float>() <= a);
  CHECK(w.min().item<float>() >= -a);
  CHECK(w.var().item<float>() == Approx(a * a / 3).epsilon(0.03));
  CHECK_THROWS_WITH(nn::init::xavier_uniform_(tg::empty({3})), Contains("[init]"));
  CHECK_THROWS_WITH(nn::init::kaiming_uniform_(w, 0, "fan_avg"), Contains("fan_avg"));
}
