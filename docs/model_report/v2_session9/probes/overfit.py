"""Diagnostic: can each latent kind learn to say something about 16 fixed images (depth <= 2)?"""
import sys, time, torch
from alit_core.model.alit import ALIT
from alit_core.model.config import get_preset
from alit_core.model.halting import Halting
from alit_core.model.transformer import use_fused_attention
from alit_core.running.rollout import ImageTokens, rollout
from alit_train.code_pack import CodePack, base_state
from alit_train.init import spatial_init
from alit_train.objectives import ALITStage1
from alit_train.sign_latents import sign_latent_model, as_sign_latent

torch.set_num_threads(1)
kind, steps, balance = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
ce_w = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
torch.manual_seed(0)
cfg = get_preset("explorer_128")
if kind == "sign":
    model = sign_latent_model(cfg); as_sign_latent(model, balance)
else:
    model = ALIT(cfg)
model.vqgan.load_state_dict(base_state("assets/training_state/explorer_128.pt"))
model.vqgan.requires_grad_(False)
spatial_init(model, scale=2.0)
pack = CodePack.load("runs/pack128.pt")
x = pack.images[:16].float() / 255.0; f = pack.features[:16].float(); y = pack.targets[:16].long()
obj = ALITStage1(model, ce_weight=ce_w, mse_weight=10, sample_depth=True)
obj.depth_limit = 2
use_fused_attention(obj, False)
params = [p for p in obj.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0)

@torch.no_grad()
def acc():
    model.eval()
    inputs = ImageTokens(x, model.tokens_from_features(f, x), y)
    out = [float((s.logits.argmax(-1) == s.targets).float().mean()) for s in
           rollout(model, inputs, halting=Halting.make("off"), decode=False, max_iterations=2)]
    model.train(); return out
t0 = time.time()
for step in range(steps):
    for g in opt.param_groups: g["lr"] = 1e-3 * min(1, (step + 1) / 30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, m = obj(x, f, y)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 3.0); opt.step()
    if step % 25 == 24 or step == steps - 1:
        print(kind, balance, step + 1, f"loss {float(loss):.3f} ce {float(m['ce']):.2f} vq {float(m['vq']):.3f}",
              "acc", [round(a, 3) for a in acc()], f"{time.time()-t0:.0f}s", flush=True)
