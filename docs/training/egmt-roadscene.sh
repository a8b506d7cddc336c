#!/usr/bin/env bash
# The runs that produced the shipped checkpoint (from the repository root, ../shared beside it).
#
# Earlier studies fixed the recipe (docs/recipe-study.md: weight-map output, entity dropout), the
# token layout (docs/layout-study.md: patch tokens, patch-fast's size) and the intensity weight
# (docs/intensity-study.md: alpha_int = 20). The checkpoint shipped before this one drew 16x16 patch
# mosaics that no metric saw; the seam study compares, at an equal budget and under a selection
# rule that neither copying a source nor a mosaic can win (docs/design.md, "validation rule"):
#   shipped            the previous recipe (each token's update returned to its own 16x16 patch,
#                      one channel-attention map per window);
#   smooth             updates interpolated between patch centres, one channel-attention map per
#                      image: no patch border exists in the output;
#   smooth-basedetail  smooth, and eq. 12's target split into a base (the brighter source's) and a
#                      detail layer (the stronger source's);
#   smooth-meanbase    the same with the mean of the two bases.
# 10 CPU minutes of training each, two seeds, RoadScene train.txt minus its validation pairs plus
# three M3SVD clips, validated every 100 steps on the held-out pairs (splits/): docs/seam-study.md.
# The recipes were run in batches (--only), the tables written again with --no-train.
egmt study --base docs/study/base.json --recipes docs/study/seams.json -o runs/seams \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --table docs/seam-study.md --title "Seam study"
# That checkpoint (sha256 db3d72053564) erased people walking through smoke. The people study and
# the balance study (docs/people-study.md, docs/study/people.json) trained, at the same budget and
# under the same rule plus a people floor (person boxes of the validation crops) and a balance floor
# (SSIM with the less kept source), recipes whose eq. 12 target keeps the infrared's structure
# where only the infrared has any (loss.intensity_target=contrast), with a noise floor on that
# contrast (loss.intensity_noise = 8, 12) and a token classifier (model.classifier=tokens):
egmt study --base docs/study/base.json --recipes docs/study/people.json -o runs/people \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --table docs/people-study.md \
    --title "People study: people in smoke, and entities that steer"
# 2. Two runs continued to 20 CPU minutes (one thread each; config of the shipped one:
#    docs/training/egmt-roadscene-config.json): contrast-k12-s1, whose best validation (1.1172, step
#    1400) was the highest of the four noise-floor runs, continued before the token runs had ended
#    (its recipe is below the people floor at the budget on seed 0), and contrast-k12-tokens-s0, the
#    better seed of the study's winner. Best validations above every floor: contrast-k12-s1 step
#    2100, 1.1238; contrast-k12-tokens-s0 step 1600, 1.1099 (nothing later beat it). The shipped
#    folder is runs/people/contrast-k12-s1/best, the higher of the two.
OMP_NUM_THREADS=1 egmt train -o runs/people/contrast-k12-s1 --resume --set train.max_cpu_minutes=20
OMP_NUM_THREADS=1 egmt train -o runs/people/contrast-k12-tokens-s0 --resume --set train.max_cpu_minutes=20
# That checkpoint (sha256 2bde2882e036) kept the people of the validation crops but cut a dark hole
# of the infrared's background into the smoke around people walking through it (26 grey levels on
# the smoke clip's boxed frames), and the smoke clip 0117_1605 was a training clip, so no rule could
# see it. The smoke study moves that clip out of training (splits/m3svd-fit-nosmoke.txt) into a
# third validation source (splits/m3svd-smoke.txt: its five boxed frames, whole), reads the person
# floor on each source and caps the halo around the people at 10 grey levels
# (docs/study/base-smoke.json, docs/study/smoke.json; docs/design.md), and trains, at the same
# budget, the previous recipe against the re-based infrared (loss.intensity_rebase, model.ir_rebase):
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --table docs/smoke-study.md \
    --title "Smoke study: people in smoke held out, a halo ceiling"
# 3. No check of contrast-k12's two runs met every floor (28 checks); 14 of contrast-k20-rebase16's
#    did. Both of its seeds were continued to 20 CPU minutes on copies (one thread each); the best
#    check above every floor is seed 0's step 2100, 1.0692 (seed 1: step 2200, 1.0675). The shipped
#    folder is runs/long/smoke-k20-rebase16-s0-20min/best.
cp -r runs/smoke/contrast-k20-rebase16-s0 runs/long/smoke-k20-rebase16-s0-20min
cp -r runs/smoke/contrast-k20-rebase16-s1 runs/long/smoke-k20-rebase16-s1-20min
OMP_NUM_THREADS=1 egmt train -o runs/long/smoke-k20-rebase16-s0-20min --resume --set train.max_cpu_minutes=20
OMP_NUM_THREADS=1 egmt train -o runs/long/smoke-k20-rebase16-s1-20min --resume --set train.max_cpu_minutes=20
# 4. After shipping (issue 17: do the entities steer more without entity dropout?), at the same budget:
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-nodrop
# 5. Issue 17, the token classifier on the shipped recipe, with and without entity dropout (same
#    budget); then both seeds of the first continued to 20 CPU minutes. Its best check above every
#    floor (1.0634) stayed under the shipped recipe's (1.0692, 1.0675): not shipped.
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-tokens \
    contrast-k20-rebase16-nodrop-tokens
for s in 0 1; do
    cp -r runs/smoke/contrast-k20-rebase16-tokens-s$s runs/long/contrast-k20-rebase16-tokens-s$s-20min
    OMP_NUM_THREADS=1 egmt train -o runs/long/contrast-k20-rebase16-tokens-s$s-20min --resume --set train.max_cpu_minutes=20
done
# 6. Entity guidance (issue 17; inference only, the weights unchanged): the shipped checkpoint
#    validated at each factor. The rule written before the numbers (the largest factor within 0.005
#    of the unguided score that meets every floor) chose 2; by eye it fades the person of sample 20
#    (named among the entities or not), so it was not shipped (the config keeps 0; --choose would
#    write the rule's choice into config.json).
python benchmarks/entity_guidance.py --checkpoint egmt/pretrained/egmt-roadscene \
    --guidance 0 0.5 1 2 4 -o docs/entity-guidance.md
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --no-train --table docs/smoke-study.md \
    --title "Smoke study: people in smoke held out, a halo ceiling"
# 7. Table VIII with the shipped recipe (issue 17): w/o TI, w/o MT&TI and w/o CGHA at the same budget.
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-noti \
    contrast-k20-rebase16-nomt-noti contrast-k20-rebase16-nocgha
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --no-train --table docs/smoke-study.md \
    --title "Smoke study: people in smoke held out, a halo ceiling"
# 8. Issue 17, the entity-conditioned target taught by fine-tuning the shipped checkpoint instead of
#    from scratch (from scratch, -person-drop50's best check meeting every floor stayed at 1.0669,
#    under the 1.0675 bar). Both seeds, 10 CPU minutes, the shipped config plus the target. The rule,
#    written before the runs reported: ship the better seed's best check meeting every floor if
#    (a) its score is at least 1.0675, (b) the mean of the run's second-half checks is at least
#    1.0563 (the shipped recipe's second-half mean from scratch: not a lucky check of a worse run),
#    (c) naming people moves the M3SVD validation clips by at least 1 grey level
#    (benchmarks/person_steering.py), and (d) its contact sheet, the README samples fused
#    caption-free and the figures show no seams, halos or faded people.
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json \
        --init-from egmt/pretrained/egmt-roadscene --seed $s --max-cpu-minutes 10 \
        --set 'loss.entity_target_classes=["person"]' --set train.entity_target_drop=0.5 \
        -o runs/long/ft-person-drop50-s$s
done
#    Result: no check of either seed met every floor (0 of 17 each; the M3SVD clips' people at
#    0.44-0.72 against the floor's 0.75) and naming people moved the output by 0.00-0.01 grey levels:
#    not shipped (docs/training.md, the entity-conditioned target).
# 9. The network underfits its own target: the shipped recipe's contrast target used as the fusion
#    scores 1.0948 on this validation and meets every floor, the shipped network 1.0692 (the study
#    tables' new reference rows). The loss's other terms (SSIM with both sources, edges) pull away
#    from it; alpha_int weighs it. At the same budget and seeds, alpha_int 40 against the shipped 20.
#    The rule, written before the runs reported: go on only if both seeds at the budget lie above
#    every seed of the shipped recipe (1.0772) and the second-half mean above its 1.0563; then both
#    seeds to 20 CPU minutes, and ship the best check meeting every floor if it beats the shipped
#    1.0692 and its contact sheet, the samples and the figures show no seams, halos or faded people.
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-int40
#    Result: 1.0655 (1.0707, 1.0603) at the budget, below every shipped-recipe seed (1.0733-1.0772):
#    not continued. Its second-half mean (1.0658 against 1.0563) looked ahead, so two more seeds were
#    run: over four seeds 1.0548 at the budget and 1.0581 over the second half, level with the
#    shipped recipe's 1.0563 (docs/training.md).
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 2 3 --jobs 2 --threads 1 --only contrast-k20-rebase16-int40
egmt study --base docs/study/base-smoke.json --recipes docs/study/smoke.json -o runs/smoke \
    --cpu-minutes 10 --seeds 0 1 2 3 --no-train --table docs/smoke-study.md \
    --title "Smoke study: people in smoke held out, a halo ceiling"
# 10. The network underfits its own target (step 9), and starting its weight map from the rule
#     (model.weight_prior) starts it saturated. fusion_output=residual: the rule's image (the loss's
#     target: model.prior_noise 20, ir_rebase 16 as loss.intensity_*) plus a correction that starts
#     at zero, so the untrained network scores the target's 1.0948. The same budget and seeds as the
#     shipped recipe, which is run again beside it (its earlier runs are not on this machine).
#     The rule, written before the runs: ship the better seed's best check meeting every floor if
#     (a) both residual seeds at the budget lie above both seeds of the shipped recipe in this study,
#     (b) the residual's second-half mean lies above the shipped recipe's in this study, (c) that check
#     beats the shipped checkpoint's 1.0692, and (d) its contact sheet, the README samples fused
#     caption-free and the figures show no seams, halos or faded people.
#     (The runs were made by the smoke study's recipes file with -o runs/smoke and moved to
#     runs/residual: the same two recipes as docs/study/residual.json, the same configs.)
egmt study --base docs/study/base-smoke.json --recipes docs/study/residual.json -o runs/residual \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --table docs/residual-study.md \
    --title "Residual study: the rule's image, corrected"
#    Result: (a)-(c) met (1.0938 at the budget against 1.0366, 2nd half 1.0939 against 1.0523, best
#    check 1.0948), but the correction stayed near zero (every check 1.089-1.095, entity effect at
#    most 0.004 grey levels: the checkpoint is the rule), and (d) failed: the rule's image glows up
#    to 125 grey levels above both sources in bright skies outside the validation crops
#    (FLIR_01871; the README sample 08, TNO 01). Not shipped (docs/training.md, "The residual
#    head"). The glow on whole validation images: below, after step 11.
# 11. The residual head with the intensity term weighted 5 instead of 20: its kink at the target
#     then pulls less than the SSIM term, whose luminance part counts a glow above both sources
#     against the fusion, so the correction may learn to take the glow off. Same budget and seeds.
#     The rule, written before the runs: ship the better seed's best check meeting every floor if
#     (a) both seeds at the budget lie above every seed of the shipped recipe (its re-run beside
#     step 10 and its earlier runs: 1.0772), (b) its second-half mean lies above 1.0563, (c) that
#     check beats 1.0692, (d) on whole validation images (benchmarks/target_halos.py) its worst
#     RoadScene pair glows on at most 0.5 % of its pixels (the target: 5.2 %, the shipped network:
#     0.11 %), and (e) its contact sheet, the README samples and the figures show no seams, halos,
#     glow or faded people.
egmt study --base docs/study/base-smoke.json --recipes docs/study/residual.json -o runs/residual \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-residual-int5
#    Result: the correction stayed near zero here too (checks 1.087-1.095, 1.0946 at the budget, best
#    check 1.0948, entity effect at most 0.003 grey levels), and the glow with it: 5.2 % of FLIR_01871's
#    pixels, against (d)'s 0.5 %. Not shipped. The glow, on whole validation images (steps 10, 11):
python benchmarks/target_halos.py --method shipped=egmt/pretrained/egmt-roadscene \
    --method residual=runs/residual/contrast-k20-rebase16-residual-s1/best \
    --method residual-int5=runs/residual/contrast-k20-rebase16-residual-int5-s0/best \
    -o docs/target-halos.md --figure docs/figures/target-halos.png
# 12. Longer training (issues 16 and 17: "longer training in the background, several CPU hours"):
#     every recipe so far had 10-20 CPU minutes (about 1700-3400 steps), and the network underfits
#     its own target (1.0692 against the target's 1.0948). The shipped recipe, unchanged but for a
#     schedule that ends: cosine decay to step 11000 (about 65 CPU minutes at one thread; capped at
#     85) and a moving average of the weights (EMA 0.999), checks every 250 steps. Seeds 0 and 1,
#     one thread each. The rule, written before the runs: the run's final check (the averaged
#     weights at the end of the schedule, not the best of ~45 noisy checks) of the better seed is
#     shipped if (a) the final checks of both seeds meet every floor and score above 1.0692 (the
#     shipped checkpoint, same validation), (b) on whole validation images
#     (benchmarks/target_halos.py) its worst pair glows no more than the shipped checkpoint's plus
#     0.1 percentage point on RoadScene (0.11 %) and the M3SVD validation clips (0.52 %), and
#     (c) its contact sheet, the README samples and the figures show no seams, halos, glow bands
#     or faded people. The entity effect (own against the next pair's entities) is reported for
#     issue 17, not required.
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json --seed $s \
        --max-steps 11000 --max-cpu-minutes 85 --save-every 250 \
        --set train.lr_schedule=cosine --set train.ema_decay=0.999 --set train.val_every=250 \
        -o runs/long/cosine-ema-11k-s$s
done
#    Result: (a) failed. Final checks 1.0703 and 1.0676, neither meeting every floor (person boxes on
#    the worst source 0.740 and 0.677 against 0.75; they fell from 0.78 and 0.83 as training went on).
#    The averaged weights plateau near 1.070 / 1.068 from step ~3000; entity effect at the end 0.30 /
#    0.23 grey levels. Not shipped (docs/training.md, longer training; the runs' configs and
#    validation logs in docs/training/long/).
# 13. The guided re-base (issue 16: the glow). The Gaussian re-base spills a bright sky's lift onto
#     a warm roof or treeline beside it (the shipped network's band on TNO 24; the target's 5.2 % of
#     FLIR_01871). model.ir_rebase_spread = loss.intensity_rebase_spread = guided spreads the lift with
#     a guided filter steered by the visible image, so it stops at the visible image's edges and
#     still fills flat smoke around a person. As a rule on this validation (benchmarks probe, before
#     any run; docs/rebase-spread.md, made below): score 1.0948 against the Gaussian's 1.0948, every
#     floor met, glow on whole validation images 0.15 % / 1.90 % (mean / worst pair) against
#     0.42 % / 5.24 %; person boxes pooled 0.863 against 0.928 (worst source 0.758, 0.764). Shipped recipe plus the
#     switch, 10 CPU minutes, seeds 0 and 1 (the shipped recipe's runs at this budget: runs/residual,
#     1.0366 at the budget, 1.0523 over the second half; the smoke study's 1.0760 and 1.0506). The
#     rule, written before the runs: continue the better seed to 20 CPU minutes (the shipped
#     checkpoint's budget) if (a) both seeds' second-half means are at least 1.0506 and (b) its best
#     check meeting every floor glows, on whole validation images (benchmarks/target_halos.py), no more
#     than the shipped checkpoint on the worst RoadScene and M3SVD validation pair (0.11 %, 0.52 %);
#     ship the continued run's best check meeting every floor if it reaches 1.0692 (the shipped
#     checkpoint), passes (b), and its contact sheet, the README samples and the figures show no
#     seams, halos, glow bands or faded people.
python benchmarks/intensity_targets.py --config docs/training/egmt-roadscene-config.json --kappas \
    --rebase-kappa 20 --rebases 16 --guided -o docs/rebase-spread.md
egmt study --base docs/study/base-smoke.json --recipes docs/study/guided.json -o runs/guided \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-guided
#    (the shipped recipe's runs of step 10 linked into runs/guided, then the table:)
egmt study --base docs/study/base-smoke.json --recipes docs/study/guided.json -o runs/guided \
    --cpu-minutes 10 --seeds 0 1 --no-train --table docs/guided-study.md \
    --title "Guided study: the re-base's lift spread by the visible image"
#    Result: (a) failed, second-half means 1.0411 and 1.0423 against 1.0506 (at the budget 1.0461
#    against 1.0366); not continued. The best checks glow on whole validation images no less than
#    the shipped checkpoint (worst RoadScene pair 0.46 % / 0.16 %, worst M3SVD pair 0.45 % / 0.81 %,
#    against 0.11 % / 0.52 %), so (b) would have failed too (docs/training.md, the guided re-base).
# 14. The loss, not the fit (issues 16 and 17). Probes on the shipped checkpoint before any run
#     (docs/loss-path.md, made below): on 480 training crops its fusion loss is 4.155 against its
#     eq. 12 target's 4.122 (0.8 % apart), and along the straight line from its image to the
#     target's the loss is flat (lowest, 4.113, three quarters of the way) while the validation score
#     dips (1.0692, 1.0640, 1.0639, 1.0706) and only the target itself scores 1.0948. Heads
#     retrained on the network's frozen features (the same head, and with two zero-started dilated
#     blocks, 800-1200 steps) left the score where it was. So the network does not fall short of
#     its target for want of capacity: the edge and SSIM terms pay for its softer image as much as
#     the intensity term charges for it. The test of that reading: the guided study's recipe with
#     the loss reduced to the intensity term (loss.alpha_edge = loss.alpha_ssim = 0: a loss whose
#     minimum is the target), 10 CPU minutes, seeds 0 and 1, against the same recipe with the whole
#     loss (step 13's runs). The rule, written before the runs:
#     (a) the reading holds if both seeds' second-half means are at least 1.08 (above every
#     full-loss run's second-half mean so far, 1.0411-1.0658, and within 0.015 of the guided
#     target's 1.0948);
#     (b) continue the better seed to 20 CPU minutes only if (a) holds, both second-half means are at
#     least 1.0506 and its best check meeting every floor glows on whole validation images
#     (benchmarks/target_halos.py) no more than the shipped checkpoint on the worst RoadScene and
#     M3SVD validation pair (0.11 %, 0.52 %); ship as in step 13 (1.0692, the looks).
#     The entity effect is reported for issue 17 (a loss that is the target's alone has no term that
#     reads the entities; the residual head's 0.00 grey levels is what to expect).
python benchmarks/loss_path.py -o docs/loss-path.md
egmt study --base docs/study/base-smoke.json --recipes docs/study/intensity-only.json -o runs/intonly \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-guided-intonly
#    Result: (a) failed as written: second-half means 1.0818 (seed 0) and 1.0738 (seed 1), seed 1
#    below 1.08. Against the same recipe with the whole loss (step 13: 1.0411, 1.0423) and every
#    whole-loss run of the shipped recipe (1.0431-1.0676) both lie higher, beyond the seeds' spread:
#    the loss accounts for most of the shortfall, not all of it. Not continued. Its best checks
#    meeting every floor (1.0742 seed 0, 1.0948 seed 1) glow on whole validation images on the
#    worst RoadScene pair 0.30 % / 0.28 % and the worst M3SVD pair 0.89 % / 0.99 % (the shipped
#    checkpoint 0.11 % / 0.43-0.52 %); on M3SVD the glow is the people on the bright stairs of
#    0111_1716, lifted above both sources by the re-base as designed. Entity effect 0.02-0.5 grey
#    levels. Table: docs/intensity-only-study.md.
egmt study --base docs/study/base-smoke.json --recipes docs/study/intensity-only.json -o runs/intonly \
    --cpu-minutes 10 --seeds 0 1 --no-train --table docs/intensity-only-study.md \
    --title "Intensity-only study: the guided recipe with the loss reduced to its intensity term"
# 15. The intensity-only loss at the shipped checkpoint's budget, with a schedule that ends. Its
#     checks swing by +-0.02 from one to the next (constant learning rate), and seed 0's people sit
#     at the floor. The guided recipe with loss.alpha_edge = loss.alpha_ssim = 0, 20 CPU minutes
#     (about 2800 steps at one thread), cosine decay to step 2800 and a weight average (EMA 0.999),
#     checks every 200 steps, seeds 0 and 1. The rule, written before the runs: ship the better
#     seed's final check (the averaged weights at the end, not the best of the checks) if
#     (a) the final checks of both seeds meet every floor and score above 1.0692 (the shipped
#     checkpoint, same validation);
#     (b) on whole RoadScene validation images (benchmarks/target_halos.py) its worst pair glows on at
#     most 0.5 % of its pixels (step 10's bound for a band beside a bright sky; the M3SVD clips'
#     glow is reported, not bounded: there it is the people standing out of the bright stairs and
#     smoke, as the re-base means them to);
#     (c) its contact sheet, the README samples and the figures (TNO 01 and 24 included, where the
#     shipped checkpoint's band shows) show no seams, halos, glow bands or faded people.
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json --seed $s \
        --max-steps 2800 --max-cpu-minutes 25 --save-every 200 \
        --set model.ir_rebase_spread=guided --set loss.intensity_rebase_spread=guided \
        --set loss.alpha_edge=0 --set loss.alpha_ssim=0 \
        --set train.lr_schedule=cosine --set train.ema_decay=0.999 --set train.val_every=200 \
        -o runs/long/intonly-guided-cosine-ema-s$s
done
#    Result: (a) failed. Final checks 1.0478 (seed 0) and 1.0755 (seed 1), neither meeting every
#    floor: person boxes on the worst source 0.749 and 0.747 against 0.75 (the guided target itself
#    has 0.758 there). Seed 1's 1.0755 is above the shipped 1.0692; 6 of its 14 checks met every
#    floor, none of seed 0's, whose score fell from 1.086 at step 800 to 1.047 as the schedule
#    ended. Not shipped (configs and validation logs in docs/training/long/).
# 16. The intensity-only loss on the shipped recipe (the Gaussian re-base, whose target keeps the
#     people plainer: person boxes pooled 0.928 against the guided target's 0.863, worst source
#     0.764 against 0.758). 10 CPU minutes, seeds 0 and 1, beside the shipped recipe's runs at this
#     budget (second-half means 1.0550, 1.0463 in the smoke study; 1.0616, 1.0431 re-run in step 10).
#     The rule, written before the runs: it is the candidate for a run at the shipped budget
#     (step 15's form, with step 15's rule) if both seeds' second-half means are at least 1.0676
#     (above every whole-loss run of the shipped recipe) and at least half of each seed's checks
#     meet every floor; its best checks' glow on whole validation images is measured either way
#     (its target glows on 5.2 % of FLIR_01871, the guided one on 1.9 %).
egmt study --base docs/study/base-smoke.json --recipes docs/study/intensity-only.json -o runs/intonly \
    --cpu-minutes 10 --seeds 0 1 --jobs 2 --threads 1 --only contrast-k20-rebase16-intonly
#    Result: failed. Second-half means 1.0665 (seed 0) and 1.0379 (seed 1), 1.0522 together: level
#    with the shipped recipe's whole-loss runs beside it (1.0523: 1.0616, 1.0431), so the intensity
#    term alone does not lift the Gaussian recipe as it lifted the guided one (step 14). Checks
#    meeting every floor 1 of 15 (seed 0) and 9 of 15 (seed 1). Its best checks glow on the worst
#    whole RoadScene validation pair 2.10 % / 0.27 % and the worst M3SVD pair 4.08 % / 1.30 %: the
#    Gaussian target's glow comes through. Not a candidate. The table (step 14's, with these rows
#    and the shipped recipe's step 10 runs linked in):
egmt study --base docs/study/base-smoke.json --recipes docs/study/intensity-only.json -o runs/intonly \
    --cpu-minutes 10 --seeds 0 1 --no-train --table docs/intensity-only-study.md \
    --title "Intensity-only study: the guided and the shipped recipe with the loss reduced to its intensity term"
# 17. Step 15's run with a target whose people clear the floor. Step 15's networks fitted the
#     guided target to within 0.009-0.011 on the worst source's person boxes (0.749, 0.747 against
#     its 0.758), so with the floor at 0.75 they could not clear it. The guided target's noise floor
#     decides how much of the infrared's structure it keeps where the visible image has its own
#     (benchmarks/intensity_targets.py, the worst-source column, made below): kappa 20, 16, 12, 8
#     give person boxes on the worst source 0.758, 0.777, 0.811, 0.811 and scores 1.0948, 1.0909,
#     1.0848, 1.0768. The rule for kappa, written before any run: the largest kappa whose target
#     clears the floor by at least 0.025 on the worst source (more than twice step 15's shortfall):
#     kappa 16. The run: step 15's, with loss.intensity_noise=16, seeds 0 and 1. The rule, written
#     before the runs: ship the better seed's best check meeting every floor (RUN/best) if
#     (a) both seeds have a check meeting every floor that scores above 1.0692 (the shipped
#     checkpoint, same validation);
#     (b) step 15's (b): on whole RoadScene validation images (benchmarks/target_halos.py) its worst
#     pair glows on at most 0.5 % of its pixels;
#     (c) step 15's (c): its contact sheet, the README samples and the figures (TNO 01, 02 and 24
#     included) show no seams, halos, glow bands or faded people.
#     Reported either way: each seed's second-half mean and share of checks meeting every floor.
python benchmarks/intensity_targets.py --config docs/training/egmt-roadscene-config.json --kappas \
    --rebase-kappa 20 16 12 8 --rebases 16 --guided -o docs/rebase-floors.md
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json --seed $s \
        --max-steps 2800 --max-cpu-minutes 25 --save-every 200 \
        --set model.ir_rebase_spread=guided --set loss.intensity_rebase_spread=guided \
        --set loss.intensity_noise=16 --set loss.alpha_edge=0 --set loss.alpha_ssim=0 \
        --set train.lr_schedule=cosine --set train.ema_decay=0.999 --set train.val_every=200 \
        -o runs/long/intonly-guided-k16-cosine-ema-s$s
done
#    Result: (a) failed. Seed 0's checks meeting every floor score at most 1.0640 (steps 200, 400
#    and 2800 meet them: 0.9971, 1.0404, 1.0640); seed 1's best is 1.0906 at step 400. Second-half
#    means (steps 1600-2800) 1.0646 and 1.0667; checks meeting every floor 3 of 14 and 10 of 14;
#    final checks 1.0640 and 1.0662, person boxes on the worst source 0.750 and 0.752. The lower
#    noise floor did not lift the networks' people on RoadScene (0.747-0.753 over the second half
#    of the checks, as in step 15) and cost seed 1's score (1.0755 at the end of step 15). Why, box by
#    box (made below): on five of RoadScene's six validation boxes every target is max(IR, VI)
#    (its contrast weight is near 0 in four, the visible image having the structure, and in the
#    fifth the infrared is the brighter source), so the source's mean
#    sits at max(IR, VI)'s 0.744 plus what the sixth box adds: FLIR_05697, a man in front of a
#    car's headlight glare, where the networks keep 0.06-0.08, their targets 0.14-0.26, the shipped
#    checkpoint 0.19 and averaging 0.77. Not shipped (configs and validation logs in
#    docs/training/long/intonly-guided-k16-cosine-ema-s{0,1}-*).
# 18. Between the whole loss and the intensity term alone. With the intensity term alone the
#     networks follow their target into max(IR, VI) on RoadScene's people (steps 15, 17: 0.745-0.753
#     on that source, the floor 0.75); with the whole loss they blend more (the shipped checkpoint
#     0.788 there) and fall further below their target's score (step 13: second-half means 1.0411,
#     1.0423 against the intensity term alone's 1.0818, 1.0738 in step 14). The shipped network's
#     loss takes 0.27 back in the edge and SSIM terms for 0.30 more in the intensity term
#     (docs/loss-path.md); halving the two moves the loss's optimum towards the target without
#     dropping the blend. The run: step 15's (the guided target at kappa 20), with
#     loss.alpha_edge=7.5 and loss.alpha_ssim=2.5, seeds 0 and 1. The rule, written before the runs:
#     step 17's (a), (b), (c).
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json --seed $s \
        --max-steps 2800 --max-cpu-minutes 25 --save-every 200 \
        --set model.ir_rebase_spread=guided --set loss.intensity_rebase_spread=guided \
        --set loss.alpha_edge=7.5 --set loss.alpha_ssim=2.5 \
        --set train.lr_schedule=cosine --set train.ema_decay=0.999 --set train.val_every=200 \
        -o runs/long/half-guided-cosine-ema-s$s
done
#    Result: (a) failed. Every one of the 28 checks met every floor (person boxes on the worst
#    source 0.769-0.781 and 0.771-0.773 over the second half), but the best scores 1.0658 (seed 0,
#    step 1000) and 1.0575 (seed 1, step 600), below the shipped 1.0692; second-half means 1.0599
#    and 1.0483, final checks 1.0594 and 1.0489. Halving the edge and SSIM terms bought the people
#    back and gave the score away with them: these runs lie on the line between the whole loss and
#    the intensity term alone, not above it. Not shipped (configs and validation logs in
#    docs/training/long/half-guided-cosine-ema-s{0,1}-*). The final checks box by box, and every
#    run at this budget side by side:
python benchmarks/person_boxes.py --method shipped=egmt/pretrained/egmt-roadscene \
    --method step15-s1=runs/long/intonly-guided-cosine-ema-s1 \
    --method step17-s0=runs/long/intonly-guided-k16-cosine-ema-s0 \
    --method step17-s1=runs/long/intonly-guided-k16-cosine-ema-s1 \
    --method step18-s0=runs/long/half-guided-cosine-ema-s0 \
    --method step18-s1=runs/long/half-guided-cosine-ema-s1 -o docs/person-boxes.md
python benchmarks/long_runs.py -o docs/long-runs.md
# 19. Which term asks for the blend. Step 18 halved the edge and SSIM terms together. Eq. 14's SSIM
#     term scores the fusion against both sources, and is met best by a blend where they differ;
#     the edge term (eq. 13) asks for the larger of the two gradients, a choice like the target's.
#     The run: step 15's (the guided target at kappa 20), with loss.alpha_ssim=0 and the edge term
#     kept whole (15), seeds 0 and 1. The rule, written before the runs: step 17's (a), (b), (c).
for s in 0 1; do
    OMP_NUM_THREADS=1 egmt train --config docs/training/egmt-roadscene-config.json --seed $s \
        --max-steps 2800 --max-cpu-minutes 25 --save-every 200 \
        --set model.ir_rebase_spread=guided --set loss.intensity_rebase_spread=guided \
        --set loss.alpha_ssim=0 \
        --set train.lr_schedule=cosine --set train.ema_decay=0.999 --set train.val_every=200 \
        -o runs/long/nossim-guided-cosine-ema-s$s
done
#    Result: (a) failed, and both seeds collapsed: from step 200 (seed 0) and step 1000 (seed 1)
#    every check fuses the re-based infrared itself (score 0.9971; the re-based infrared as a fusion
#    scores 0.9970 and meets every floor). Seed 1's best check was 1.0696 at step 800. The weight
#    map's logits run past its sigmoid on every validation pair (made below): without the SSIM term
#    the edge term pulls the map to the re-based infrared, and no gradient comes back. Not shipped
#    (configs and validation logs in docs/training/long/nossim-guided-cosine-ema-s{0,1}-*).
python benchmarks/logit_saturation.py --method shipped=egmt/pretrained/egmt-roadscene \
    --method step15-s0=runs/long/intonly-guided-cosine-ema-s0 --method step15-s1=runs/long/intonly-guided-cosine-ema-s1 \
    --method step17-s0=runs/long/intonly-guided-k16-cosine-ema-s0 --method step17-s1=runs/long/intonly-guided-k16-cosine-ema-s1 \
    --method step18-s0=runs/long/half-guided-cosine-ema-s0 --method step18-s1=runs/long/half-guided-cosine-ema-s1 \
    --method step19-s0=runs/long/nossim-guided-cosine-ema-s0 --method step19-s1=runs/long/nossim-guided-cosine-ema-s1 \
    -o docs/logit-saturation.md
python benchmarks/long_runs.py -o docs/long-runs.md
