// One table gradchecks every differentiable Tensor op in float64 (tinygrad's helper_test_op): each
// row is {name, fn, inputs (shape + value domain), grad_fn PyTorch 1.13 names for the same call}.
// Inputs are drawn away from kinks, ties and bounds by their domain. Layer: tests/autograd.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;
using Inputs = std::vector<Tensor>;

// Where an input's values come from (all float64, from randn with a per-row seed).
enum class Domain {
  Normal,    // randn
  Positive,  // |randn| + 0.5: log, sqrt, pow bases, denominators
  AwayFromZero,  // sign(x) · (|x| + 0.2): abs, relu, 1/x
};

struct In {
  Shape shape;
  Domain domain = Domain::Normal;
};

struct OpRow {
  const char* name;
  std::function<Tensor(const Inputs&)> fn;
  std::vector<In> inputs;
  const char* grad_fn;  // the output's grad_fn name, as PyTorch 1.13 prints it
};

Tensor draw(const In& in) {
  Tensor x = tg::randn(in.shape, tg::kFloat64);
  switch (in.domain) {
    case Domain::Normal: break;
    case Domain::Positive: x = x.abs() + 0.5; break;
    case Domain::AwayFromZero: x = (x.gt(0.0) - x.lt(0.0)).to(tg::kFloat64) * (x.abs() + 0.2); break;
  }
  return x.requires_grad_();
}

Tensor idx(std::vector<std::int64_t> v) { return tg::tensor(v); }

// Forward-only constants some rows close over (built on first use, not at static init).
const Tensor& idx3() {
  static const Tensor t = idx({2, 0, 2});  // repeated index: gradients add
  return t;
}
const Tensor& idx4() {
  static const Tensor t = idx({1, 1, 0, 3});
  return t;
}
const Tensor& twos() {
  static const Tensor t = tg::full({3, 4}, 2.0, tg::kFloat64);
  return t;
}

Tensor ints(std::vector<std::int64_t> v, Shape s) { return tg::tensor(v, s); }
const Tensor& gather_idx() {  // [3, 2] into a [3, 4] along dim 1
  static const Tensor t = ints({0, 3, 2, 2, 1, 0}, {3, 2});
  return t;
}
const Tensor& gather_idx0() {  // [4, 2] into a [3, 4] along dim 0: longer than the input there
  static const Tensor t = ints({2, 0, 1, 1, 0, 2, 2, 0}, {4, 2});
  return t;
}
const Tensor& scatter_idx() {  // [2, 4] into a [3, 4] along dim 0, repeats add
  static const Tensor t = ints({0, 1, 2, 0, 2, 2, 0, 0}, {2, 4});
  return t;
}
const Tensor& mask34() {
  static const Tensor t = ints({1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}, {3, 4});
  return t;
}
const Tensor& mask31() {
  static const Tensor t = ints({0, 1, 1}, {3, 1});
  return t;
}

const Domain P = Domain::Positive, A = Domain::AwayFromZero;  // rows default to Domain::Normal

// clang-format off
const std::vector<OpRow> kRows = {
  // --- binary, tensor ⊕ tensor (same shape, broadcast, 0-dim) ----------------------------------
  {"add",              [](const Inputs& v) { return v[0] + v[1]; },       {{{3, 4}}, {{3, 4}}},     "AddBackward0"},
  {"add [3,1]+[4]",    [](const Inputs& v) { return v[0] + v[1]; },       {{{3, 1}}, {{4}}},        "AddBackward0"},
  {"add 0-dim+[2,3]",  [](const Inputs& v) { return v[0] + v[1]; },       {{{}}, {{2, 3}}},         "AddBackward0"},
  {"sub",              [](const Inputs& v) { return v[0] - v[1]; },       {{{3, 4}}, {{3, 4}}},     "SubBackward0"},
  {"sub [4]-[3,1]",    [](const Inputs& v) { return v[0] - v[1]; },       {{{4}}, {{3, 1}}},        "SubBackward0"},
  {"sub [2,3]-0-dim",  [](const Inputs& v) { return v[0] - v[1]; },       {{{2, 3}}, {{}}},         "SubBackward0"},
  {"mul",              [](const Inputs& v) { return v[0] * v[1]; },       {{{3, 4}}, {{3, 4}}},     "MulBackward0"},
  {"mul [3,1]*[4]",    [](const Inputs& v) { return v[0] * v[1]; },       {{{3, 1}}, {{4}}},        "MulBackward0"},
  {"mul 0-dim*0-dim",  [](const Inputs& v) { return v[0] * v[1]; },       {{{}}, {{}}},             "MulBackward0"},
  {"mul [2,1,3]*[4,1]",[](const Inputs& v) { return v[0] * v[1]; },       {{{2, 1, 3}}, {{4, 1}}},  "MulBackward0"},
  {"div",              [](const Inputs& v) { return v[0] / v[1]; },       {{{3, 4}}, {{3, 4}, A}},  "DivBackward0"},
  {"div [3,1]/[4]",    [](const Inputs& v) { return v[0] / v[1]; },       {{{3, 1}}, {{4}, A}},     "DivBackward0"},
  {"div 0-dim/[3]",    [](const Inputs& v) { return v[0] / v[1]; },       {{{}}, {{3}, P}},         "DivBackward0"},
  {"div [2,3]/0-dim",  [](const Inputs& v) { return v[0] / v[1]; },       {{{2, 3}}, {{}, P}},      "DivBackward0"},
  {"div by constant",  [](const Inputs& v) { return v[0] / twos(); },      {{{3, 4}}},               "DivBackward0"},
  {"constant / x",     [](const Inputs& v) { return twos() / v[0]; },      {{{3, 4}, A}},            "DivBackward0"},
  {"constant * x",     [](const Inputs& v) { return twos() * v[0]; },      {{{3, 4}}},               "MulBackward0"},
  // --- binary with a scalar on either side -----------------------------------------------------
  {"x + 2",            [](const Inputs& v) { return v[0] + 2.0; },        {{{3, 4}}},               "AddBackward0"},
  {"2 + x",            [](const Inputs& v) { return 2.0 + v[0]; },        {{{3, 4}}},               "AddBackward0"},
  {"x - 2",            [](const Inputs& v) { return v[0] - 2.0; },        {{{3, 4}}},               "SubBackward0"},
  {"2 - x",            [](const Inputs& v) { return 2.0 - v[0]; },        {{{3, 4}}},               "RsubBackward1"},
  {"x * 3",            [](const Inputs& v) { return v[0] * 3.0; },        {{{3, 4}}},               "MulBackward0"},
  {"3 * x",            [](const Inputs& v) { return 3.0 * v[0]; },        {{{3, 4}}},               "MulBackward0"},
  {"x / 2",            [](const Inputs& v) { return v[0] / 2.0; },        {{{3, 4}}},               "DivBackward0"},
  {"2 / x",            [](const Inputs& v) { return 2.0 / v[0]; },        {{{3, 4}, A}},            "MulBackward0"},
  {"2 / x 0-dim",      [](const Inputs& v) { return 2.0 / v[0]; },        {{{}, P}},                "MulBackward0"},
  // --- pow ---------------------------------------------------------------------------------------
  {"pow 2",            [](const Inputs& v) { return v[0].pow(2); },       {{{3, 4}}},               "PowBackward0"},
  {"pow 3",            [](const Inputs& v) { return v[0].pow(3.0); },     {{{3, 4}}},               "PowBackward0"},
  {"pow 0.5",          [](const Inputs& v) { return v[0].pow(0.5); },     {{{3, 4}, P}},            "PowBackward0"},
  {"pow -1.5",         [](const Inputs& v) { return v[0].pow(-1.5); },    {{{3, 4}, P}},            "PowBackward0"},
  {"pow 0",            [](const Inputs& v) { return v[0].pow(0.0); },     {{{3, 4}}},               "PowBackward0"},
  {"pow tensor",       [](const Inputs& v) { return v[0].pow(v[1]); },    {{{3, 4}, P}, {{3, 4}}},  "PowBackward1"},
  {"pow [3,1]^[4]",    [](const Inputs& v) { return v[0].pow(v[1]); },    {{{3, 1}, P}, {{4}}},     "PowBackward1"},
  {"pow constant^x",   [](const Inputs& v) { return twos().pow(v[0]); },   {{{3, 4}}},               "PowBackward1"},
  {"pow x^constant",   [](const Inputs& v) { return v[0].pow(twos()); },   {{{3, 4}}},               "PowBackward1"},
  // --- unary -------------------------------------------------------------------------------------
  {"neg",              [](const Inputs& v) { return v[0].neg(); },        {{{3, 4}}},               "NegBackward0"},
  {"operator-",        [](const Inputs& v) { return -v[0]; },             {{{3, 4}}},               "NegBackward0"},
  {"exp",              [](const Inputs& v) { return v[0].exp(); },        {{{3, 4}}},               "ExpBackward0"},
  {"exp 0-dim",        [](const Inputs& v) { return v[0].exp(); },        {{{}}},                   "ExpBackward0"},
  {"log",              [](const Inputs& v) { return v[0].log(); },        {{{3, 4}, P}},            "LogBackward0"},
  {"sqrt",             [](const Inputs& v) { return v[0].sqrt(); },       {{{3, 4}, P}},            "SqrtBackward0"},
  {"abs",              [](const Inputs& v) { return v[0].abs(); },        {{{3, 4}, A}},            "AbsBackward0"},
  {"sigmoid",          [](const Inputs& v) { return v[0].sigmoid(); },    {{{3, 4}}},               "SigmoidBackward0"},
  {"tanh",             [](const Inputs& v) { return v[0].tanh(); },       {{{3, 4}}},               "TanhBackward0"},
  {"relu",             [](const Inputs& v) { return v[0].relu(); },       {{{3, 4}, A}},            "ReluBackward0"},
  {"leaky_relu",       [](const Inputs& v) { return tg::leaky_relu(v[0], 0.2); }, {{{3, 4}, A}},     "LeakyReluBackward0"},
  {"clamp",            [](const Inputs& v) { return v[0].clamp(-0.5, 0.5); }, {{{4, 5}}},           "ClampBackward1"},
  {"clamp above 0",    [](const Inputs& v) { return v[0].clamp(0.0, 100.0); }, {{{3, 4}, A}},       "ClampBackward1"},
  {"maximum",          [](const Inputs& v) { return v[0].maximum(v[1]); }, {{{3, 4}}, {{3, 4}}},    "MaximumBackward0"},
  {"maximum [3,1],[4]",[](const Inputs& v) { return v[0].maximum(v[1]); }, {{{3, 1}}, {{4}}},       "MaximumBackward0"},
  {"minimum",          [](const Inputs& v) { return v[0].minimum(v[1]); }, {{{3, 4}}, {{3, 4}}},    "MinimumBackward0"},
  {"minimum [4],[3,1]",[](const Inputs& v) { return v[0].minimum(v[1]); }, {{{4}}, {{3, 1}}},       "MinimumBackward0"},
  // --- reductions --------------------------------------------------------------------------------
  {"sum",              [](const Inputs& v) { return v[0].sum(); },                   {{{2, 3, 4}}}, "SumBackward0"},
  {"sum 0-dim",        [](const Inputs& v) { return v[0].sum(); },                   {{{}}},        "SumBackward0"},
  {"sum {1}",          [](const Inputs& v) { return v[0].sum({1}); },                {{{2, 3, 4}}}, "SumBackward1"},
  {"sum {0} keepdim",  [](const Inputs& v) { return v[0].sum({0}, true); },          {{{2, 3, 4}}}, "SumBackward1"},
  {"sum {-1}",         [](const Inputs& v) { return v[0].sum({-1}); },               {{{2, 3, 4}}}, "SumBackward1"},
  {"sum {0,2}",        [](const Inputs& v) { return v[0].sum({0, 2}); },             {{{2, 3, 4}}}, "SumBackward1"},
  {"sum {-1,-3} keep", [](const Inputs& v) { return v[0].sum({-1, -3}, true); },     {{{2, 3, 4}}}, "SumBackward1"},
  {"mean",             [](const Inputs& v) { return v[0].mean(); },                  {{{2, 3, 4}}}, "MeanBackward0"},
  {"mean {1}",         [](const Inputs& v) { return v[0].mean({1}); },               {{{2, 3, 4}}}, "MeanBackward1"},
  {"mean {0} keepdim", [](const Inputs& v) { return v[0].mean({0}, true); },         {{{2, 3, 4}}}, "MeanBackward1"},
  {"mean {-2,-1}",     [](const Inputs& v) { return v[0].mean({-2, -1}); },          {{{2, 3, 4}}}, "MeanBackward1"},
  {"mean {0,2} keep",  [](const Inputs& v) { return v[0].mean({0, 2}, true); },      {{{2, 3, 4}}}, "MeanBackward1"},
  {"var",              [](const Inputs& v) { return v[0].var(); },                   {{{2, 3, 4}}}, "VarBackward0"},
  {"var {1}",          [](const Inputs& v) { return v[0].var({1}); },                {{{2, 3, 4}}}, "VarBackward0"},
  {"var {0} biased keep", [](const Inputs& v) { return v[0].var({0}, false, true); }, {{{2, 3, 4}}}, "VarBackward0"},
  {"var {-1}",         [](const Inputs& v) { return v[0].var({-1}, true, false); },  {{{2, 3, 4}}}, "VarBackward0"},
  {"var {0,2} keep",   [](const Inputs& v) { return v[0].var({0, 2}, true, true); }, {{{2, 3, 4}}}, "VarBackward0"},
  {"var {} biased",    [](const Inputs& v) { return v[0].var({}, false, false); },   {{{2, 3, 4}}}, "VarBackward0"},
  {"std",              [](const Inputs& v) { return v[0].std(); },                   {{{2, 3, 4}}}, "StdBackward0"},
  {"std {1}",          [](const Inputs& v) { return v[0].std({1}); },                {{{2, 3, 4}}}, "StdBackward0"},
  {"std {-1} biased keep", [](const Inputs& v) { return v[0].std({-1}, false, true); }, {{{2, 3, 4}}}, "StdBackward0"},
  {"std {0,2}",        [](const Inputs& v) { return v[0].std({0, 2}); },             {{{2, 3, 4}}}, "StdBackward0"},
  {"max",              [](const Inputs& v) { return v[0].max(); },                   {{{2, 3, 4}}}, "MaxBackward1"},
  {"min",              [](const Inputs& v) { return v[0].min(); },                   {{{2, 3, 4}}}, "MinBackward1"},
  {"amax {1}",         [](const Inputs& v) { return v[0].max({1}); },                {{{2, 3, 4}}}, "AmaxBackward0"},
  {"amax {-1} keep",   [](const Inputs& v) { return v[0].max({-1}, true); },         {{{2, 3, 4}}}, "AmaxBackward0"},
  {"amax {0,2}",       [](const Inputs& v) { return v[0].max({0, 2}); },             {{{2, 3, 4}}}, "AmaxBackward0"},
  {"amin {0} keep",    [](const Inputs& v) { return v[0].min({0}, true); },          {{{2, 3, 4}}}, "AminBackward0"},
  {"amin {-2}",        [](const Inputs& v) { return v[0].min({-2}); },               {{{2, 3, 4}}}, "AminBackward0"},
  {"amin {1,2} keep",  [](const Inputs& v) { return v[0].min({1, 2}, true); },       {{{2, 3, 4}}}, "AminBackward0"},
  // --- matmul ------------------------------------------------------------------------------------
  {"matmul 1-D.1-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{4}}, {{4}}},                 "DotBackward0"},
  {"matmul 2-D.1-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{3, 4}}, {{4}}},              "MvBackward0"},
  {"matmul 1-D.2-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{4}}, {{4, 2}}},              "SqueezeBackward3"},
  {"matmul 2-D.2-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{3, 4}}, {{4, 2}}},           "MmBackward0"},
  {"matmul 3-D.2-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{2, 3, 4}}, {{4, 5}}},        "UnsafeViewBackward0"},
  {"matmul 3-D.3-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{2, 3, 4}}, {{2, 4, 5}}},     "UnsafeViewBackward0"},
  {"matmul broadcast batch", [](const Inputs& v) { return tg::matmul(v[0], v[1]); },
                                                                          {{{2, 1, 3, 4}}, {{3, 4, 2}}},  "UnsafeViewBackward0"},
  {"matmul 2-D.3-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{3, 4}}, {{2, 4, 5}}},        "CloneBackward0"},
  {"matmul 1-D.3-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{4}}, {{2, 4, 3}}},           "UnsafeViewBackward0"},
  {"matmul 3-D.1-D",   [](const Inputs& v) { return v[0].matmul(v[1]); }, {{{2, 3, 4}}, {{4}}},           "UnsafeViewBackward0"},
  {"matmul by constant", [](const Inputs& v) { return v[0].matmul(twos().t()); }, {{{2, 4}}},              "MmBackward0"},
  // --- views -------------------------------------------------------------------------------------
  {"view",             [](const Inputs& v) { return v[0].view({4, 3}); },          {{{3, 4}}},    "ViewBackward0"},
  {"view -1",          [](const Inputs& v) { return v[0].view({-1}); },            {{{2, 3, 2}}}, "ViewBackward0"},
  {"reshape (view)",   [](const Inputs& v) { return v[0].reshape({2, 6}); },       {{{3, 4}}},    "ReshapeAliasBackward0"},
  {"reshape (copy)",   [](const Inputs& v) { return v[0].t().reshape({-1}); },     {{{3, 4}}},    "UnsafeViewBackward0"},
  {"reshape 0-dim",    [](const Inputs& v) { return v[0].reshape({1, 1}); },       {{{}}},        "ReshapeAliasBackward0"},
  {"transpose",        [](const Inputs& v) { return v[0].transpose(0, 1); },       {{{3, 4}}},    "TransposeBackward0"},
  {"transpose -1,-3",  [](const Inputs& v) { return v[0].transpose(-1, -3); },     {{{2, 3, 4}}}, "TransposeBackward0"},
  {"t",                [](const Inputs& v) { return v[0].t(); },                   {{{3, 4}}},    "TBackward0"},
  {"t 1-D",            [](const Inputs& v) { return v[0].t(); },                   {{{4}}},       "TBackward0"},
  {"permute",          [](const Inputs& v) { return v[0].permute({2, 0, 1}); },    {{{2, 3, 4}}}, "PermuteBackward0"},
  {"permute negative", [](const Inputs& v) { return v[0].permute({-1, 0, -2}); },  {{{2, 3, 4}}}, "PermuteBackward0"},
  {"slice",            [](const Inputs& v) { return v[0].slice(0, 1, 3); },        {{{3, 4}}},    "SliceBackward0"},
  {"slice step 2",     [](const Inputs& v) { return v[0].slice(1, 1, 5, 2); },     {{{3, 5}}},    "SliceBackward0"},
  {"slice negative",   [](const Inputs& v) { return v[0].slice(-1, -3, 100, 2); }, {{{2, 5}}},    "SliceBackward0"},
  {"select",           [](const Inputs& v) { return v[0].select(0, 1); },          {{{3, 4}}},    "SelectBackward0"},
  {"select -1,-1",     [](const Inputs& v) { return v[0].select(-1, -1); },        {{{2, 3, 4}}}, "SelectBackward0"},
  {"unsqueeze 0",      [](const Inputs& v) { return v[0].unsqueeze(0); },          {{{3, 4}}},    "UnsqueezeBackward0"},
  {"unsqueeze -1",     [](const Inputs& v) { return v[0].unsqueeze(-1); },         {{{3, 4}}},    "UnsqueezeBackward0"},
  {"squeeze all",      [](const Inputs& v) { return v[0].squeeze(); },             {{{3, 1, 4, 1}}}, "SqueezeBackward0"},
  {"squeeze dim",      [](const Inputs& v) { return v[0].squeeze(1); },            {{{3, 1, 4, 1}}}, "SqueezeBackward1"},
  {"squeeze -1",       [](const Inputs& v) { return v[0].squeeze(-1); },           {{{3, 1, 4, 1}}}, "SqueezeBackward1"},
  {"expand",           [](const Inputs& v) { return v[0].expand({2, 3, 4}); },     {{{3, 1}}},    "ExpandBackward0"},
  {"expand -1",        [](const Inputs& v) { return v[0].expand({-1, 4}); },       {{{3, 1}}},    "ExpandBackward0"},
  {"expand 0-dim",     [](const Inputs& v) { return v[0].expand({2, 3}); },        {{{}}},        "ExpandBackward0"},
  {"flatten",          [](const Inputs& v) { return v[0].flatten(); },             {{{2, 3, 4}}}, "ReshapeAliasBackward0"},
  {"flatten 1",        [](const Inputs& v) { return v[0].flatten(1); },            {{{2, 3, 4}}}, "ReshapeAliasBackward0"},
  {"flatten 0,1",      [](const Inputs& v) { return v[0].flatten(0, 1); },         {{{2, 3, 4}}}, "ReshapeAliasBackward0"},
  {"flatten 0-dim",    [](const Inputs& v) { return v[0].flatten(); },             {{{}}},        "ReshapeAliasBackward0"},
  {"flatten copy",     [](const Inputs& v) { return v[0].transpose(0, 2).flatten(); }, {{{2, 3, 4}}}, "UnsafeViewBackward0"},
  {"contiguous",       [](const Inputs& v) { return v[0].t().contiguous(); },      {{{3, 4}}},    "CloneBackward0"},
  {"contiguous (no-op)", [](const Inputs& v) { return v[0].contiguous(); },        {{{3, 4}}},    ""},
  {"clone",            [](const Inputs& v) { return v[0].clone(); },               {{{3, 4}}},    "CloneBackward0"},
  {"to float64 (no-op)", [](const Inputs& v) { return v[0].to(tg::kFloat64); },    {{{3, 4}}},    ""},
  {"index_select",     [](const Inputs& v) { return v[0].index_select(0, idx3()); }, {{{3, 4}}},   "IndexSelectBackward0"},
  {"index_select 1",   [](const Inputs& v) { return v[0].index_select(1, idx4()); }, {{{3, 4}}},   "IndexSelectBackward0"},
  {"index_select -1",  [](const Inputs& v) { return v[0].index_select(-1, idx3()); }, {{{2, 2, 3}}}, "IndexSelectBackward0"},
  // --- joining, selecting, sorting (values differentiable; indices constant) -----------------------
  {"cat",              [](const Inputs& v) { return tg::cat({v[0], v[1]}, 1); },      {{{2, 3}}, {{2, 2}}},   "CatBackward0"},
  {"cat constant between", [](const Inputs& v) { return tg::cat({v[0], twos(), v[1]}); }, {{{1, 4}}, {{2, 4}}}, "CatBackward0"},
  {"stack dim 1",      [](const Inputs& v) { return tg::stack({v[0], v[1]}, 1); },    {{{3, 4}}, {{3, 4}}},   "StackBackward0"},
  {"stack 0-dim",      [](const Inputs& v) { return tg::stack({v[0], v[1]}); },       {{{}}, {{}}},           "StackBackward0"},
  {"where",            [](const Inputs& v) { return tg::where(mask34(), v[0], v[1]); }, {{{3, 4}}, {{3, 4}}}, "WhereBackward0"},
  {"where broadcast",  [](const Inputs& v) { return tg::where(mask31(), v[0], v[1]); }, {{{1, 4}}, {{4}}},    "WhereBackward0"},
  {"where scalar",     [](const Inputs& v) { return v[0].where(mask34(), 0.5); },     {{{3, 4}}},             "WhereBackward0"},
  {"masked_fill",      [](const Inputs& v) { return v[0].masked_fill(mask34(), 2.0); }, {{{3, 4}}},           "MaskedFillBackward0"},
  {"masked_fill mask grows", [](const Inputs& v) { return v[0].masked_fill(mask31(), 2.0); }, {{{4}}},         "MaskedFillBackward0"},
  {"masked_fill tensor value", [](const Inputs& v) { return v[0].masked_fill(mask34(), v[1]); }, {{{3, 4}}, {{}}}, "MaskedFillBackward1"},
  {"gather",           [](const Inputs& v) { return v[0].gather(1, gather_idx()); },  {{{3, 4}}},             "GatherBackward0"},
  {"gather dim 0",     [](const Inputs& v) { return v[0].gather(0, gather_idx0()); }, {{{3, 4}}},             "GatherBackward0"},
  {"scatter_add",      [](const Inputs& v) { return v[0].scatter_add(0, scatter_idx(), v[1]); }, {{{3, 4}}, {{2, 4}}}, "ScatterAddBackward0"},
  {"scatter_add src larger", [](const Inputs& v) { return v[0].scatter_add(1, gather_idx(), v[1]); }, {{{3, 4}}, {{3, 5}}}, "ScatterAddBackward0"},
  {"topk",             [](const Inputs& v) { return v[0].topk(2).values; },            {{{3, 5}}},             "TopkBackward0"},
  {"topk smallest dim 0", [](const Inputs& v) { return v[0].topk(2, 0, false).values; }, {{{4, 3}}},          "TopkBackward0"},
  {"sort",             [](const Inputs& v) { return v[0].sort().values; },             {{{3, 4}}},             "SortBackward0"},
  {"sort descending dim 0", [](const Inputs& v) { return v[0].sort(0, true).values; }, {{{4, 3}}},            "SortBackward0"},
  // --- the softmax family, clamp with tensor bounds, norm ---------------------------------------
  {"softmax",          [](const Inputs& v) { return v[0].softmax(1); },               {{{3, 4}}},             "SoftmaxBackward0"},
  {"softmax dim 0 3-D", [](const Inputs& v) { return tg::softmax(v[0], 0); },         {{{2, 3, 4}}},          "SoftmaxBackward0"},
  {"log_softmax",      [](const Inputs& v) { return v[0].log_softmax(-1); },          {{{3, 4}}},             "LogSoftmaxBackward0"},
  {"log_softmax dim 1 3-D", [](const Inputs& v) { return tg::log_softmax(v[0], 1); }, {{{2, 3, 4}}},          "LogSoftmaxBackward0"},
  {"logsumexp",        [](const Inputs& v) { return v[0].logsumexp({1}); },           {{{3, 4}}},             "LogsumexpBackward0"},
  {"logsumexp {0,2} keep", [](const Inputs& v) { return v[0].logsumexp({0, 2}, true); }, {{{2, 3, 4}}},       "LogsumexpBackward0"},
  {"logsumexp all",    [](const Inputs& v) { return tg::logsumexp(v[0], {}); },       {{{2, 3, 4}}},          "LogsumexpBackward0"},
  {"clamp tensor bounds", [](const Inputs& v) { return v[0].clamp(v[1], v[2]); },     {{{3, 4}}, {{4}}, {{3, 1}}}, "ClampBackward0"},
  {"clamp tensor min", [](const Inputs& v) { return v[0].clamp(v[1], std::nullopt); }, {{{3, 4}}, {{3, 1}}},  "ClampBackward0"},
  {"clamp tensor max", [](const Inputs& v) { return tg::clamp(v[0], std::nullopt, v[1]); }, {{{3, 4}}, {{4}}}, "ClampBackward0"},
  {"clamp min only",   [](const Inputs& v) { return v[0].clamp(0.0, std::nullopt); },  {{{3, 4}, A}},         "ClampBackward1"},
  {"norm",             [](const Inputs& v) { return v[0].norm(); },                   {{{3, 4}}},             "NormBackward1"},
  {"norm 1 dim 1",     [](const Inputs& v) { return v[0].norm(1, {1}); },             {{{3, 4}, A}},          "NormBackward1"},
  {"norm inf dim 0",   [](const Inputs& v) { return v[0].norm(INFINITY, {0}); },      {{{3, 4}}},             "NormBackward1"},
  {"norm 3 {0,2} keep", [](const Inputs& v) { return v[0].norm(3, {0, 2}, true); },   {{{2, 3, 4}}},          "NormBackward1"},
  {"norm 1.5 dim -1",  [](const Inputs& v) { return tg::norm(v[0], 1.5, {-1}); },     {{{3, 4}, A}},          "NormBackward1"},
  {"norm 0.5 dim 1",   [](const Inputs& v) { return v[0].norm(0.5, {1}); },           {{{3, 4}, A}},          "NormBackward1"},
  {"norm 0",           [](const Inputs& v) { return v[0].norm(0, {1}); },             {{{3, 4}, A}},          "NormBackward1"},
  // --- non-contiguous inputs: the op runs on a transposed / sliced / expanded view -------------
  {"t then exp",       [](const Inputs& v) { return v[0].t().exp(); },                       {{{3, 4}}}, "ExpBackward0"},
  {"t then mul",       [](const Inputs& v) { return v[0].t() * v[1]; },                      {{{3, 4}}, {{4, 3}}}, "MulBackward0"},
  {"slice then sigmoid", [](const Inputs& v) { return v[0].slice(1, 0, 5, 2).sigmoid(); },   {{{3, 5}}}, "SigmoidBackward0"},
  {"t then matmul",    [](const Inputs& v) { return v[0].t().matmul(v[1].t()); },            {{{4, 3}}, {{2, 4}}}, "MmBackward0"},
  {"permute then bmm", [](const Inputs& v) { return v[0].permute({1, 0, 2}).matmul(v[1]); }, {{{3, 2, 4}}, {{4, 2}}}, "UnsafeViewBackward0"},
  {"t then sum {0}",   [](const Inputs& v) { return v[0].t().sum({0}); },                   {{{3, 4}}}, "SumBackward1"},
  {"t then var {1}",   [](const Inputs& v) { return v[0].t().var({1}); },                   {{{3, 4}}}, "VarBackward0"},
  {"slice then amax",  [](const Inputs& v) { return v[0].slice(0, 0, 4, 2).max({1}); },      {{{4, 3}}}, "AmaxBackward0"},
  {"t then index_select", [](const Inputs& v) { return v[0].t().index_select(0, idx3()); },   {{{4, 3}}}, "IndexSelectBackward0"},
  {"t then gather",    [](const Inputs& v) { return v[0].t().gather(1, gather_idx()); },     {{{4, 3}}}, "GatherBackward0"},
  {"t then softmax",   [](const Inputs& v) { return v[0].t().softmax(0); },                  {{{4, 3}}}, "SoftmaxBackward0"},
  {"t then cat",       [](const Inputs& v) { return tg::cat({v[0].t(), v[1]}); },            {{{4, 3}}, {{1, 4}}}, "CatBackward0"},
  {"t then log",       [](const Inputs& v) { return v[0].t().log(); },                       {{{3, 4}, P}}, "LogBackward0"},
  {"expand then mul",  [](const Inputs& v) { return v[0].expand({3, 4}) * v[1]; },          {{{3, 1}}, {{3, 4}}}, "MulBackward0"},
  {"select then div",  [](const Inputs& v) { return v[0].select(1, 2) / v[1].select(0, 0); }, {{{3, 4}}, {{2, 3}, A}}, "DivBackward0"},
  // --- composites: several entries, one input used by several ops ------------------------------
  {"tour chain",       [](const Inputs& v) { return (v[0].matmul(v[1]).sigmoid() * 3.0 + v[0].sum({1}, true)).pow(2).mean(); },
                                                                                             {{{2, 3}}, {{3, 2}}}, "MeanBackward0"},
  {"x used thrice",    [](const Inputs& v) { return v[0] * v[0].exp() + v[0].tanh(); },      {{{3, 4}}}, "AddBackward0"},
  {"softmax by hand",  [](const Inputs& v) {
                          Tensor e = (v[0] - v[0].max({1}, true)).exp();
                          return e / e.sum({1}, true); },                                    {{{3, 4}}}, "DivBackward0"},
  {"logsumexp by hand", [](const Inputs& v) { return v[0].exp().sum({-1}).log(); },          {{{3, 4}}}, "LogBackward0"},
};
// clang-format on

}  // namespace

TEST_CASE("gradcheck: every differentiable op in float64", "[autograd][gradcheck]") {
  for (std::size_t r = 0; r < kRows.size(); ++r) {
    const OpRow& row = kRows[r];
    INFO("row: " << row.name);
    tg::manual_seed(1000 + r);
    Inputs inputs;
    for (const In& in : row.inputs) inputs.push_back(draw(in));

    Tensor out = row.fn(inputs);
    CHECK(out.dtype() == tg::kFloat64);
    CHECK(out.requires_grad());
    CHECK(out.grad_fn_name() == row.grad_fn);

    tg::autograd::GradcheckResult result = tg::autograd::gradcheck(row.fn, inputs);
    INFO(result.message);
    CHECK(result.ok);
  }
}

TEST_CASE("gradcheck: the table runs its rows without leaving entries on the tape", "[autograd][gradcheck]") {
  std::size_t before = tg::autograd::tape_size();
  tg::manual_seed(7);
  Tensor x = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
  Tensor y = tg::randn({4}, tg::kFloat64).abs().add(0.5).requires_grad_();
  CHECK(tg::autograd::gradcheck([](const Inputs& v) { return (v[0] / v[1]).tanh().sum({0}); }, {x, y}));
  CHECK(tg::autograd::tape_size() == before);
  // gradcheck works on copies: the caller's leaves get no gradient.
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(y.grad().defined());
}

TEST_CASE("gradcheck: inputs that do not require grad are constants", "[autograd][gradcheck]") {
  tg::manual_seed(8);
  Tensor x = tg::randn({3, 4}, tg::kFloat64).requires_grad_();
  Tensor c = tg::randn({4}, tg::kFloat64);  // no requires_grad: not perturbed, not checked
  CHECK(tg::autograd::gradcheck([](const Inputs& v) { return v[0] * v[1]; }, {x, c}));
  // Detected: a gradient that ignores the constant is wrong for x.
  auto wrong = [](const Inputs& v) {
    Tensor y;
    {
      tg::NoGradGuard no_grad;
      y = v[0] * v[1];
    }
    return tg::autograd::record("WrongMulBackward", y, {v[0]}, [](const Tensor& g) { return Inputs{g}; });
  };
  tg::autograd::GradcheckResult r = tg::autograd::gradcheck(wrong, {x, c});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, Catch::Contains("input 0") && Catch::Contains("element"));
}
