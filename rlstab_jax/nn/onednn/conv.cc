// XLA FFI handlers for a 2-D convolution (forward, backward-data, backward-weights) through
// oneDNN's direct convolution kernels. Built on first use by rlstab_jax/nn/onednn/build.py.
//
// Layouts are the ones rlstab_jax uses everywhere: input/output NHWC, kernel HWIO, float32,
// square stride, explicit (top, left, bottom, right) padding. The kernel (and its gradient) is
// reordered to the layout oneDNN's kernel asks for (format_tag::any): it is small, the
// activations are not copied at all. Why this exists: rlstab_jax/nn/onednn/__init__.py.
#include <cstdint>
#include <exception>
#include <string>

#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using DT = dnnl::memory::data_type;
using B4 = ffi::Buffer<ffi::F32, 4>;
using R4 = ffi::ResultBuffer<ffi::F32, 4>;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The three plain descriptors and a forward primitive descriptor (the hint every backward
// primitive needs), from the NHWC input, HWIO kernel and NHWC output shapes.
struct Problem {
  memory::desc src, wei, dst, wei_any;
  memory::dims strides, dilation, pad_lo, pad_hi;

  Problem(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w, ffi::Span<const int64_t> y,
          int64_t s, int64_t pt, int64_t pl, int64_t pb, int64_t pr)
      : src({x[0], x[3], x[1], x[2]}, DT::f32, Tag::nhwc),
        wei({w[3], w[2], w[0], w[1]}, DT::f32, Tag::hwio),
        dst({y[0], y[3], y[1], y[2]}, DT::f32, Tag::nhwc),
        wei_any({w[3], w[2], w[0], w[1]}, DT::f32, Tag::any),
        strides({s, s}), dilation({0, 0}), pad_lo({pt, pl}), pad_hi({pb, pr}) {}

  dnnl::convolution_forward::primitive_desc Forward() const {
    return dnnl::convolution_forward::primitive_desc(
        Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
        wei_any, dst, strides, dilation, pad_lo, pad_hi);
  }
};

// The user's HWIO kernel in the layout `want`: itself, or a reordered copy.
memory KernelAs(const memory::desc& want, memory user, dnnl::stream& stream) {
  if (want == user.get_desc()) return user;
  memory out(want, Engine());
  dnnl::reorder(user, out).execute(stream, user, out);
  return out;
}

template <typename F>
ffi::Error Guarded(F&& body) {
  try {
    body();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN convolution: ") + e.what());
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: never unwind into XLA
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN convolution: ") + e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Forward(B4 x, B4 w, R4 y, int64_t s, int64_t pt, int64_t pl, int64_t pb, int64_t pr) {
  return Guarded([&] {
    Problem p(x.dimensions(), w.dimensions(), y->dimensions(), s, pt, pl, pb, pr);
    auto pd = p.Forward();
    dnnl::stream stream(Engine());
    memory src(p.src, Engine(), x.typed_data());
    memory dst(p.dst, Engine(), y->typed_data());
    memory wei = KernelAs(pd.weights_desc(), memory(p.wei, Engine(), w.typed_data()), stream);
    dnnl::convolution_forward(pd).execute(
        stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    stream.wait();
  });
}

ffi::Error BackwardData(B4 dy, B4 w, R4 dx, int64_t s, int64_t pt, int64_t pl, int64_t pb,
                        int64_t pr) {
  return Guarded([&] {
    Problem p(dx->dimensions(), w.dimensions(), dy.dimensions(), s, pt, pl, pb, pr);
    auto pd = dnnl::convolution_backward_data::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, p.src, p.wei_any, p.dst, p.strides,
        p.dilation, p.pad_lo, p.pad_hi, p.Forward());
    dnnl::stream stream(Engine());
    memory diff_src(p.src, Engine(), dx->typed_data());
    memory diff_dst(p.dst, Engine(), dy.typed_data());
    memory wei = KernelAs(pd.weights_desc(), memory(p.wei, Engine(), w.typed_data()), stream);
    dnnl::convolution_backward_data(pd).execute(
        stream,
        {{DNNL_ARG_DIFF_SRC, diff_src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_DST, diff_dst}});
    stream.wait();
  });
}

ffi::Error BackwardWeights(B4 x, B4 dy, R4 dw, int64_t s, int64_t pt, int64_t pl, int64_t pb,
                           int64_t pr) {
  return Guarded([&] {
    Problem p(x.dimensions(), dw->dimensions(), dy.dimensions(), s, pt, pl, pb, pr);
    auto pd = dnnl::convolution_backward_weights::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, p.src, p.wei_any, p.dst, p.strides,
        p.dilation, p.pad_lo, p.pad_hi, p.Forward());
    dnnl::stream stream(Engine());
    memory src(p.src, Engine(), x.typed_data());
    memory diff_dst(p.dst, Engine(), dy.typed_data());
    memory user(p.wei, Engine(), dw->typed_data());
    bool reorder = pd.diff_weights_desc() != p.wei;
    memory diff_wei = reorder ? memory(pd.diff_weights_desc(), Engine()) : user;
    dnnl::convolution_backward_weights(pd).execute(
        stream,
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_wei}});
    if (reorder) dnnl::reorder(diff_wei, user).execute(stream, diff_wei, user);
    stream.wait();
  });
}

}  // namespace

// (arg, arg) -> result, attributes: stride and the four paddings.
#define RLSTAB_CONV_BINDING                                                      \
  ffi::Ffi::Bind().Arg<B4>().Arg<B4>().Ret<B4>().Attr<int64_t>("stride")         \
      .Attr<int64_t>("pad_top").Attr<int64_t>("pad_left")                       \
      .Attr<int64_t>("pad_bottom").Attr<int64_t>("pad_right")

XLA_FFI_DEFINE_HANDLER_SYMBOL(RlstabConvForward, Forward, RLSTAB_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(RlstabConvBackwardData, BackwardData, RLSTAB_CONV_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(RlstabConvBackwardWeights, BackwardWeights, RLSTAB_CONV_BINDING);
