"""Official-layout StackGAN state dicts and the official forward passes, as plain functions over the keys.

Written for the conversion tests from the releases' documented structure (key names, shapes, concatenation orders —
docs/stackgan.md, "Official checkpoints"), independently of `t2igan.models`: every layer below is a
``torch.nn.functional`` call picked by its key name. The widths are the releases' config constants (GF_DIM, DF_DIM,
CONDITION_DIM / EMBEDDING_DIM, Z_DIM, R_NUM, TREE.BRANCH_NUM), so tiny values make tiny but official-layout files.
BatchNorm runs in evaluation mode (running statistics), as a loaded generator samples. Discriminators return the
logits before the release's final Sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

State = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------- random official files
class _Maker:
    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.sd: State = {}

    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g)

    def conv(self, key: str, cout: int, cin: int, k: int, bias: bool = False) -> None:
        self.sd[f"{key}.weight"] = self._randn(cout, cin, k, k) / (cin * k * k) ** 0.5
        if bias:
            self.sd[f"{key}.bias"] = 0.1 * self._randn(cout)

    def linear(self, key: str, cout: int, cin: int, bias: bool) -> None:
        self.sd[f"{key}.weight"] = self._randn(cout, cin) / cin**0.5
        if bias:
            self.sd[f"{key}.bias"] = 0.1 * self._randn(cout)

    def bn(self, key: str, c: int) -> None:
        self.sd[f"{key}.weight"] = 1.0 + 0.1 * self._randn(c)
        self.sd[f"{key}.bias"] = 0.1 * self._randn(c)
        self.sd[f"{key}.running_mean"] = 0.1 * self._randn(c)
        self.sd[f"{key}.running_var"] = 0.5 + torch.rand(c, generator=self.g)
        self.sd[f"{key}.num_batches_tracked"] = torch.tensor(1234, dtype=torch.long)


def stage1_g(gf: int, cond: int, z: int, text: int, *, seed: int = 0, prefix: str = "") -> State:
    """StackGAN-Pytorch STAGE1_G: ``ca_net.fc``, ``fc`` (Linear + BN1d), ``upsample1…4``, ``img``."""
    m, ngf = _Maker(seed), gf * 8
    m.linear(f"{prefix}ca_net.fc", 2 * cond, text, bias=True)
    m.linear(f"{prefix}fc.0", ngf * 16, z + cond, bias=False)
    m.bn(f"{prefix}fc.1", ngf * 16)
    ch = ngf
    for i in range(1, 5):
        m.conv(f"{prefix}upsample{i}.1", ch // 2, ch, 3)
        m.bn(f"{prefix}upsample{i}.2", ch // 2)
        ch //= 2
    m.conv(f"{prefix}img.0", 3, ch, 3)
    return m.sd


def stage2_g(gf: int, cond: int, z: int, text: int, r_num: int, *, seed: int = 0) -> State:
    """StackGAN-Pytorch STAGE2_G: Stage-I under ``STAGE1_G.``, ``ca_net``, ``encoder``, ``hr_joint``,
    ``residual``, ``upsample1…4``, ``img``."""
    m = _Maker(seed + 1)
    m.sd.update(stage1_g(gf, cond, z, text, seed=seed, prefix="STAGE1_G."))
    m.linear("ca_net.fc", 2 * cond, text, bias=True)
    m.conv("encoder.0", gf, 3, 3)
    m.conv("encoder.2", 2 * gf, gf, 4)
    m.bn("encoder.3", 2 * gf)
    m.conv("encoder.5", 4 * gf, 2 * gf, 4)
    m.bn("encoder.6", 4 * gf)
    m.conv("hr_joint.0", 4 * gf, 4 * gf + cond, 3)
    m.bn("hr_joint.1", 4 * gf)
    for r in range(r_num):
        for i in (0, 3):
            m.conv(f"residual.{r}.block.{i}", 4 * gf, 4 * gf, 3)
            m.bn(f"residual.{r}.block.{i + 1}", 4 * gf)
    ch = 4 * gf
    for i in range(1, 5):
        m.conv(f"upsample{i}.1", ch // 2, ch, 3)
        m.bn(f"upsample{i}.2", ch // 2)
        ch //= 2
    m.conv("img.0", 3, ch, 3)
    return m.sd


def stackgan_d(df: int, cond: int, stage: int, *, seed: int = 5) -> State:
    """STAGE1_D (4 strided convs) or STAGE2_D (6 strided convs + 2 conv3×3), with their logit heads."""
    m = _Maker(seed)
    m.conv("encode_img.0", df, 3, 4)
    idx, ch = 2, df
    for _ in range(3 if stage == 1 else 5):
        m.conv(f"encode_img.{idx}", ch * 2, ch, 4)
        m.bn(f"encode_img.{idx + 1}", ch * 2)
        idx, ch = idx + 3, ch * 2
    while ch > 8 * df:
        m.conv(f"encode_img.{idx}", ch // 2, ch, 3)
        m.bn(f"encode_img.{idx + 1}", ch // 2)
        idx, ch = idx + 3, ch // 2
    m.conv("get_cond_logits.outlogits.0", 8 * df, 8 * df + cond, 3)
    m.bn("get_cond_logits.outlogits.1", 8 * df)
    m.conv("get_cond_logits.outlogits.3", 1, 8 * df, 4, bias=True)
    if stage == 2:
        m.conv("get_uncond_logits.outlogits.0", 1, 8 * df, 4, bias=True)
    return m.sd


def g_net(gf: int, ef: int, z: int, text: int, r_num: int, branches: int, *, conditional: bool = True) -> State:
    """StackGAN-v2 G_NET: ``ca_net`` (GLU), ``h_net1`` (+ ``img_net1``) and ``h_netK`` / ``img_netK``."""
    m = _Maker(7)
    code = ef if conditional else z
    if conditional:
        m.linear("ca_net.fc", 4 * ef, text, bias=True)
    ngf = gf * 16
    m.linear("h_net1.fc.0", ngf * 4 * 4 * 2, z + (ef if conditional else 0), bias=False)
    m.bn("h_net1.fc.1", ngf * 4 * 4 * 2)
    ch = ngf
    for i in range(1, 5):
        m.conv(f"h_net1.upsample{i}.1", ch, ch, 3)  # to 2·(ch/2) channels, GLU halves them
        m.bn(f"h_net1.upsample{i}.2", ch)
        ch //= 2
    m.conv("img_net1.img.0", 3, ch, 3)
    for k in range(2, branches + 1):
        m.conv(f"h_net{k}.jointConv.0", 2 * ch, ch + code, 3)
        m.bn(f"h_net{k}.jointConv.1", 2 * ch)
        for r in range(r_num):
            m.conv(f"h_net{k}.residual.{r}.block.0", 2 * ch, ch, 3)
            m.bn(f"h_net{k}.residual.{r}.block.1", 2 * ch)
            m.conv(f"h_net{k}.residual.{r}.block.3", ch, ch, 3)
            m.bn(f"h_net{k}.residual.{r}.block.4", ch)
        m.conv(f"h_net{k}.upsample.1", ch, ch, 3)
        m.bn(f"h_net{k}.upsample.2", ch)
        ch //= 2
        m.conv(f"img_net{k}.img.0", 3, ch, 3)
    return m.sd


def d_net_blocks(size: int) -> list[str]:
    """The block names of D_NET64 / D_NET128 / D_NET256 after ``img_code_s16``, in forward order."""
    return {64: [], 128: ["img_code_s32", "img_code_s32_1"]}.get(
        size, ["img_code_s32", "img_code_s64", "img_code_s64_1", "img_code_s64_2"]
    )


def d_net(size: int, df: int, ef: int, *, conditional: bool = True, seed: int = 11) -> State:
    """StackGAN-v2 D_NET64/128/256: ``img_code_s16`` then down-blocks and conv3×3 blocks, heads."""
    m = _Maker(seed)
    m.conv("img_code_s16.0", df, 3, 4)
    ch = df
    for i in (2, 5, 8):
        m.conv(f"img_code_s16.{i}", ch * 2, ch, 4)
        m.bn(f"img_code_s16.{i + 1}", ch * 2)
        ch *= 2
    for name in d_net_blocks(size):
        k, cout = (3, ch // 2) if name[-2] == "_" else (4, ch * 2)
        m.conv(f"{name}.0", cout, ch, k)
        m.bn(f"{name}.1", cout)
        ch = cout
    m.conv("logits.0", 1, 8 * df, 4, bias=True)
    if conditional:
        m.conv("jointConv.0", 8 * df, 8 * df + ef, 3)
        m.bn("jointConv.1", 8 * df)
        m.conv("uncond_logits.0", 1, 8 * df, 4, bias=True)
    return m.sd


# ------------------------------------------------------------------------------------------- official forwards
def _bn(sd: State, key: str, x: torch.Tensor) -> torch.Tensor:
    w, b = sd[f"{key}.weight"], sd[f"{key}.bias"]
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], w, b, training=False, eps=1e-5)


def _glu(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[1] // 2
    return x[:, :n] * torch.sigmoid(x[:, n:])


def _up(sd: State, key: str, x: torch.Tensor, act) -> torch.Tensor:
    """``Upsample(nearest ×2), conv3×3 (key.1), BN (key.2), act``."""
    x = F.interpolate(x, scale_factor=2, mode="nearest")
    return act(_bn(sd, f"{key}.2", F.conv2d(x, sd[f"{key}.1.weight"], padding=1)))


def ca_mean(sd: State, emb: torch.Tensor, key: str = "ca_net.fc", glu: bool = False) -> torch.Tensor:
    """μ of CA_NET (ĉ = μ: the noise switched off)."""
    x = F.linear(emb, sd[f"{key}.weight"], sd[f"{key}.bias"])
    x = _glu(x) if glu else F.relu(x)
    return x[:, : x.shape[1] // 2]


def stage1_forward(sd: State, emb: torch.Tensor, noise: torch.Tensor, prefix: str = "") -> torch.Tensor:
    c = ca_mean(sd, emb, f"{prefix}ca_net.fc")
    h = F.linear(torch.cat((noise, c), 1), sd[f"{prefix}fc.0.weight"])  # (noise, c)
    h = F.relu(_bn(sd, f"{prefix}fc.1", h)).view(emb.shape[0], -1, 4, 4)
    for i in range(1, 5):
        h = _up(sd, f"{prefix}upsample{i}", h, F.relu)
    return torch.tanh(F.conv2d(h, sd[f"{prefix}img.0.weight"], padding=1))


def stage2_forward(sd: State, emb: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    img1 = stage1_forward(sd, emb, noise, "STAGE1_G.")
    e = F.relu(F.conv2d(img1, sd["encoder.0.weight"], padding=1))
    e = F.relu(_bn(sd, "encoder.3", F.conv2d(e, sd["encoder.2.weight"], stride=2, padding=1)))
    e = F.relu(_bn(sd, "encoder.6", F.conv2d(e, sd["encoder.5.weight"], stride=2, padding=1)))
    c = ca_mean(sd, emb)[:, :, None, None].repeat(1, 1, e.shape[2], e.shape[3])
    h = F.relu(_bn(sd, "hr_joint.1", F.conv2d(torch.cat([e, c], 1), sd["hr_joint.0.weight"], padding=1)))
    r = 0
    while f"residual.{r}.block.0.weight" in sd:
        y = F.relu(_bn(sd, f"residual.{r}.block.1", F.conv2d(h, sd[f"residual.{r}.block.0.weight"], padding=1)))
        h = F.relu(h + _bn(sd, f"residual.{r}.block.4", F.conv2d(y, sd[f"residual.{r}.block.3.weight"], padding=1)))
        r += 1
    for i in range(1, 5):
        h = _up(sd, f"upsample{i}", h, F.relu)
    return img1, torch.tanh(F.conv2d(h, sd["img.0.weight"], padding=1))


def g_net_forward(sd: State, z: torch.Tensor, emb: torch.Tensor | None) -> list[torch.Tensor]:
    conditional = "ca_net.fc.weight" in sd
    c = ca_mean(sd, emb, glu=True) if conditional else z
    x = torch.cat((c, z), 1) if conditional else z  # (c, z)
    h = _glu(_bn(sd, "h_net1.fc.1", F.linear(x, sd["h_net1.fc.0.weight"]))).view(z.shape[0], -1, 4, 4)
    for i in range(1, 5):
        h = _up(sd, f"h_net1.upsample{i}", h, _glu)
    images = [torch.tanh(F.conv2d(h, sd["img_net1.img.0.weight"], padding=1))]
    k = 2
    while f"h_net{k}.jointConv.0.weight" in sd:
        p = f"h_net{k}"
        cc = c[:, :, None, None].repeat(1, 1, h.shape[2], h.shape[3])
        h = _glu(_bn(sd, f"{p}.jointConv.1", F.conv2d(torch.cat((cc, h), 1), sd[f"{p}.jointConv.0.weight"], padding=1)))
        r = 0
        while f"{p}.residual.{r}.block.0.weight" in sd:
            q = f"{p}.residual.{r}.block"
            y = _glu(_bn(sd, f"{q}.1", F.conv2d(h, sd[f"{q}.0.weight"], padding=1)))
            h = h + _bn(sd, f"{q}.4", F.conv2d(y, sd[f"{q}.3.weight"], padding=1))
            r += 1
        h = _up(sd, f"{p}.upsample", h, _glu)
        images.append(torch.tanh(F.conv2d(h, sd[f"img_net{k}.img.0.weight"], padding=1)))
        k += 1
    return images


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _conv_bn_lrelu(sd: State, conv: str, bn: str | None, x: torch.Tensor) -> torch.Tensor:
    w = sd[f"{conv}.weight"]
    x = F.conv2d(x, w, stride=2 if w.shape[-1] == 4 else 1, padding=1)
    return _lrelu(_bn(sd, bn, x) if bn else x)


def stackgan_d_forward(sd: State, img: torch.Tensor, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(conditional logit, unconditional logit or None) of STAGE1_D / STAGE2_D."""
    x, i = img, 0
    while f"encode_img.{i}.weight" in sd:
        bn = f"encode_img.{i + 1}" if f"encode_img.{i + 1}.weight" in sd else None
        x = _conv_bn_lrelu(sd, f"encode_img.{i}", bn, x)
        i += 3 if bn else 2
    c = mu[:, :, None, None].repeat(1, 1, 4, 4)
    h = F.conv2d(torch.cat((x, c), 1), sd["get_cond_logits.outlogits.0.weight"], padding=1)
    h = _lrelu(_bn(sd, "get_cond_logits.outlogits.1", h))
    w, b = sd["get_cond_logits.outlogits.3.weight"], sd["get_cond_logits.outlogits.3.bias"]
    cond = F.conv2d(h, w, b, stride=4).view(-1)
    if "get_uncond_logits.outlogits.0.weight" not in sd:
        return cond, None
    w, b = sd["get_uncond_logits.outlogits.0.weight"], sd["get_uncond_logits.outlogits.0.bias"]
    return cond, F.conv2d(x, w, b, stride=4).view(-1)


def d_net_forward(sd: State, img: torch.Tensor, mu: torch.Tensor | None) -> list[torch.Tensor]:
    """[conditional logit, unconditional logit] of D_NET64/128/256 ([logit] in the unconditional mode)."""
    x = _conv_bn_lrelu(sd, "img_code_s16.0", None, img)
    for i in (2, 5, 8):
        x = _conv_bn_lrelu(sd, f"img_code_s16.{i}", f"img_code_s16.{i + 1}", x)
    for name in d_net_blocks(img.shape[-1]):
        x = _conv_bn_lrelu(sd, f"{name}.0", f"{name}.1", x)
    if mu is None:
        return [F.conv2d(x, sd["logits.0.weight"], sd["logits.0.bias"], stride=4).view(-1)]
    c = mu[:, :, None, None].repeat(1, 1, 4, 4)
    h = _lrelu(_bn(sd, "jointConv.1", F.conv2d(torch.cat((c, x), 1), sd["jointConv.0.weight"], padding=1)))
    out = F.conv2d(h, sd["logits.0.weight"], sd["logits.0.bias"], stride=4).view(-1)
    return [out, F.conv2d(x, sd["uncond_logits.0.weight"], sd["uncond_logits.0.bias"], stride=4).view(-1)]
