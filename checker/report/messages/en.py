"""English: every fixed text of the reports and the terminal."""

MESSAGES = {
    # statuses (verdicts, criteria, modules)
    "status.pass": "PASS", "status.fail": "FAIL", "status.inconclusive": "INCONCLUSIVE", "status.warn": "WARNING",
    "status.not_applicable": "not applicable", "status.independent": "independent", "status.derived": "derived",
    "status.identical": "identical copy", "status.review": "needs review", "status.error": "ERROR",
    # identifiers of the tool, in words
    "severity.critical": "critical", "severity.major": "major", "severity.minor": "minor", "severity.info": "information",
    "severity.unknown": "{name}",
    "ckind.weights": "weight independence", "ckind.derived_share": "derived parameter share", "ckind.license": "license",
    "ckind.lineage": "lineage", "ckind.disclosure": "third-party disclosure", "ckind.tokenizer": "tokenizer",
    "ckind.architecture": "architecture", "ckind.unknown": "{name}",
    "kind.decoder": "language decoder", "kind.encoder": "encoder", "kind.vision_encoder": "vision encoder",
    "kind.audio_encoder": "audio encoder", "kind.embeddings": "token embeddings", "kind.lm_head": "output head (LM head)",
    "kind.projector": "projector", "kind.generic": "other layers", "kind.other": "other", "kind.unknown": "{name}",
    "kind.sinusoid_1d": "1-D sinusoidal position table", "kind.sincos_2d": "2-D sin-cos position table",
    "kind.rotary_inv_freq": "rotary inv_freq", "kind.alibi_slopes": "ALiBi slopes", "kind.causal_mask": "causal mask",
    "kind.position_ids": "position ids", "kind.identity": "identity matrix", "kind.constant": "constant tensor",
    "stat.heldout_row_pearson": "held-out unit correlation", "stat.shared_token_pearson": "shared-token row correlation",
    "stat.hidden_gram_mantel": "layer similarity screen (Gram-matrix Mantel correlation)",
    "stat.rotation_aligned_row_pearson": "unit correlation through a fitted rotation (review only)",
    "stat.unknown": "statistic {name}",
    "role.q": "query projection", "role.k": "key projection", "role.v": "value projection", "role.o": "attention output",
    "role.qkv": "fused query/key/value", "role.gate": "FFN gate", "role.up": "FFN up-projection", "role.down": "FFN down-projection",
    "role.embed": "token embedding", "role.lm_head": "LM head", "role.pos_embed": "position embedding",
    "role.type_embed": "token-type embedding", "role.patch_embed": "patch embedding", "role.norm": "norm weight",
    "role.bias": "bias", "role.linear": "linear weight", "role.unknown": "{name}",
    # report: frame
    "report.title": "Audit report", "report.verdict": "Verdict", "report.derived_share": "Derived parameter share",
    "report.module_share": "layer by layer; {share} by whole modules", "report.coverage": "Compared",
    "report.running": "{submission} · verdict: {verdict}",
    "pdf.page_before": "page ", "pdf.page_between": " of ", "pdf.page_after": "",
    "sec.cover": "1. Cover", "sec.summary": "2. Summary", "sec.criteria": "3. Criteria", "sec.weights": "4. Weight evidence per module",
    "sec.glossary": "Glossary", "sec.lineage": "5. Lineage: declared and detected", "sec.licenses": "6. Licenses",
    "sec.disclosure": "7. Third-party disclosure", "sec.waivers": "8. Waivers", "sec.notev": "9. Not evaluated",
    "sec.repro": "10. Reproducibility", "sec.limits": "11. Limitations", "sec.signoff": "Sign-off", "sec.tokenizer": "Tokenizer",
    # cover
    "cover.submission": "Submission", "cover.path": "Path", "cover.source": "Source", "cover.source.local": "local folder",
    "cover.source.huggingface": "Hugging Face Hub", "cover.revision": "revision", "cover.parameters": "Parameters",
    "cover.files": "Submission files", "cover.file": "File", "cover.bytes": "Bytes", "cover.sha256": "SHA-256",
    "cover.audited": "Weights audited", "cover.yes": "yes", "cover.rulepack": "Rule pack", "cover.version": "version",
    "cover.programme": "Programme requirement", "cover.tool": "Tool", "cover.date": "Date of the audit",
    "cover.registry": "Registry snapshot (reference models)", "cover.reference": "Reference", "cover.publisher": "Publisher",
    "cover.license": "License", "cover.source_rev": "Source and revision", "cover.local_pinned": "local folder (pinned by its file digests)",
    "cover.weight_files": "Weight files (SHA-256)", "cover.fingerprint": "Fingerprint (SHA-256)", "cover.not_recorded": "not recorded",
    "cover.significance": "Significance level {alpha} per test, Bonferroni-corrected over {tests} module × reference comparisons.",
    "cover.architecture": "Architecture (information only)",
    # summary
    "summary.verdict.pass": "The submission {submission} PASSES the rule pack {pack}: every deciding criterion is met.",
    "summary.verdict.fail": "The submission {submission} FAILS the rule pack {pack}: at least one deciding criterion is not met.",
    "summary.verdict.inconclusive": "No verdict can be given for {submission} under the rule pack {pack}: something required could not be evaluated.",
    "summary.derived": "The module {module} ({kind}, {share} of the parameters, {parameters} parameters) is derived from the module "
                       "{reference_module} of the reference model {reference}. Layers (submission → reference): {layers}. "
                       "Certainty: p {p} after correction for every comparison made (z {z}).",
    "summary.identical": "The module {module} ({kind}, {share} of the parameters, {parameters} parameters) is a copy of the module "
                         "{reference_module} of the reference model {reference}: {identical} of its parameters are byte-identical.",
    "summary.share": "In all, {share} of the submission's parameters derive from registered reference models.",
    "summary.nothing_copied": "No module of the submission derives from any of the {n} registered reference models.",
    "summary.open_modules": "Not decided by the weights: {modules} (see 'Not evaluated').",
    "summary.review_modules": "Needs a human review: {modules}. The weights show evidence of derivation that no calibrated null "
                              "can make significant; the tool neither clears nor flags these modules.",
    "summary.failed": "Failed criteria", "summary.what": "What was found", "summary.change": "What would change the verdict",
    "summary.change.derived": "Retraining the derived module(s) {modules} from scratch, or removing them, and auditing again.",
    "summary.change.criterion": "Criterion {id} would have to be met: {title}.",
    "summary.change.inconclusive": "Evaluating what is listed under 'Not evaluated' (section 9): until then no verdict can be given.",
    "summary.change.registry": "The weights test only finds derivations from the {n} registered reference model(s); "
                               "registering another model the submission may derive from and auditing again could change the verdict.",
    # criteria
    "crit.id": "Id", "crit.title": "Criterion", "crit.kind": "Checks", "crit.severity": "Severity", "crit.status": "Status",
    "crit.finding": "Finding", "crit.evidence": "Evidence", "crit.evidence_items": "{n} evidence item(s)",
    "crit.see": "see", "crit.remediation": "Remediation", "crit.waived": "waived", "crit.waiver_expired": "waiver expired",
    "crit.detail": "Detail",
    "finding.pass": "Met.", "finding.fail": "Not met.", "finding.warn": "Warning.", "finding.inconclusive": "Could not be decided.",
    "finding.not_applicable": "Not applicable.",
    # weights
    "report.null_hypothesis": "Null hypothesis of the weights tests: independent initialisation and training. A module counts as "
                              "derived when its weights are more similar to a reference's than two independently initialised and "
                              "trained models can be. A model started from a reference's initial weights (the same random seed) "
                              "therefore counts as derived from that reference, even if it was then trained on other data.",
    "w.module": "Module", "w.kind": "Kind", "w.parameters": "Parameters", "w.share": "Share", "w.coverage": "Compared",
    "w.status": "Status", "w.best": "Best-matching reference", "w.statistic": "Statistic", "w.score": "Score", "w.z": "z",
    "w.p": "p", "w.p_corrected": "p (corrected)", "w.layer_map": "Layer map (submission → reference)", "w.reason": "Reason",
    "w.none": "no reference module compared", "w.overview": "Overview", "w.other_refs": "All references compared",
    "w.identical": "Byte-identical", "w.derived_parameters": "Tied to the reference (layer by layer)",
    "w.derived_parameters_value": "{parameters} of {total} parameters ({share} of the module)", "w.weak_only": "weak evidence only", "w.heatmap": "Layer × layer z-scores",
    "w.heatmap_note": "Darker red is stronger evidence; outlined cells form the layer map.",
    "w.null": "Null distribution and observed value", "w.null_note": "Under independent training the z-score follows the "
              "standard normal curve; the red line is the observed z of the best layer pair.",
    "w.alignment": "Recovered alignment", "w.hidden": "Hidden dimension", "w.identity": "compared as stored (no permutation found)",
    "w.rotated": "residual stream turned by an orthogonal map fitted on {source} (anchor z {anchor_z}): every comparison through it is review-only evidence",
    "w.permuted": "permutation recovered: {moved} of {dims} dimensions moved, {flips} sign flips (anchors: {source}; anchor z {anchor_z})",
    "w.not_adopted": "no alignment adopted: the best anchors ({source}) agree only at z {anchor_z}, below the adoption threshold "
                     "{min_z}; no permutation was found",
    "w.aligned": "aligned by {source}: no dimension moved",
    "w.dropped": "Reference layers dropped", "w.inserted": "Submission layers inserted", "w.repeated": "Reference layers repeated",
    "w.layer": "Layers", "w.role": "Tensor role", "w.scale": "Scale", "w.spread": "Scale spread", "w.units_moved": "Units moved",
    "w.weak": "Weak evidence (norm weights and biases): shown, not decisive",
    "w.weak_note": "Raw cosine of norm weights is about 0.99 even between unrelated models; these figures never decide.",
    "w.tensor": "Tensor", "w.pearson": "Pearson", "w.raw_cosine": "Raw cosine", "w.decisive": "Decisive", "w.no": "no",
    "w.baseline": "Baseline: against {n} unrelated reference module(s) the best score is {score} (z {z}).",
    "w.fixed_share": "Fixed tables (sinusoidal position tables, masks, constants: the same in every model of their shape) "
                     "hold {share} of the parameters; they are never compared and never evidence.",
    "w.fixed_module": "Not evidence: fixed tables, {share} of this module's parameters.",
    "w.skipped": "Not compared", "w.no_evidence": "No module could be compared with a reference.",
    "weak.one_of": "one of {names}", "weak.unnamed": "(tensor not named)",
    "fig.heatmap": "z-score of {module} against {reference}, layer by layer", "fig.sub_layer": "submission layer",
    "fig.ref_layer": "reference layer", "fig.null_title": "Null distribution of z with the observed value",
    "fig.null_label": "null: independent training, N(0, 1)", "fig.observed": "observed", "fig.baseline": "unrelated refs",
    # glossary
    "gloss.term": "Term", "gloss.meaning": "Meaning",
    "gloss.heldout_row_pearson.term": "held-out unit correlation",
    "gloss.heldout_row_pearson.text": "Each unit (neuron or attention head row) of the reference is matched to its most similar unit of the "
                                      "submission on one half of the hidden columns, then the correlation is measured on the other half. "
                                      "Independent models score near 0; a derived module stays high even after permuting or rescaling units.",
    "gloss.shared_token_pearson.term": "shared-token row correlation",
    "gloss.shared_token_pearson.text": "For tokens both vocabularies contain, the correlation of their embedding (or output) rows after aligning the "
                                       "hidden dimensions. Independent models score near 0.",
    "gloss.hidden_gram_mantel.term": "layer similarity screen",
    "gloss.hidden_gram_mantel.text": "Every submission layer is first compared with every reference layer through the correlations between its weight "
                                     "columns (a Gram matrix of 128 hidden dimensions), by a Mantel test whose null relabels the hidden dimensions. "
                                     "Only pairs it flags get the held-out unit correlation; when it flags none, its own p-value is reported, "
                                     "and it cannot reach the verdict threshold.",
    "gloss.rotation_aligned_row_pearson.term": "unit correlation through a fitted rotation",
    "gloss.rotation_aligned_row_pearson.text": "When the submission's residual stream appears turned by an orthogonal map (its token or pixel "
                                               "geometry is the reference's but no permutation aligns it), the map is fitted on shared anchors "
                                               "and every matrix is compared through it. No exact null exists for a fitted map, so this "
                                               "evidence sends a module to review by a human and never decides a verdict on its own.",
    "gloss.z.term": "z-score", "gloss.z.text": "How many standard deviations the observed score lies above what independent training gives. "
                                               "Values above about 5 do not occur by chance.",
    "gloss.p.term": "p-value", "gloss.p.text": "The probability of a score at least this high if the module were trained independently.",
    "gloss.p_corrected.term": "p (corrected)", "gloss.p_corrected.text": "The p-value multiplied by the number of comparisons made "
                                                                         "(Bonferroni), so that testing many pairs cannot create a finding.",
    "gloss.coverage.term": "compared", "gloss.coverage.text": "The share of the module's parameters that a decisive statistic compared "
                                                              "with a reference; the rest is listed under 'Not evaluated'.",
    "gloss.layer_map.term": "layer map", "gloss.layer_map.text": "For each submission layer, the reference layer it significantly matches "
                                                                 "(dropped, repeated or inserted layers show here).",
    "gloss.alignment.term": "recovered alignment", "gloss.alignment.text": "The reordering and sign flips of the hidden dimension found from "
                                                                           "anchors both models share (token or patch embeddings).",
    "gloss.scale.term": "scale, spread", "gloss.scale.text": "The factor by which a weight matrix was rescaled (1 = unchanged) and the spread "
                                                             "of per-dimension factors (a folded norm gain shows as spread).",
    "gloss.units_moved.term": "units moved", "gloss.units_moved.text": "The share of reference units found at another index in the "
                                                                       "submission (permuted, pruned or inserted neurons and heads).",
    "gloss.weak.term": "weak evidence", "gloss.weak.text": "Comparisons of norm weights and biases. They are near-constant vectors, so "
                                                           "similarity there proves nothing; shown for completeness, never decisive.",
    "gloss.baseline.term": "baseline", "gloss.baseline.text": "The best score of the module against reference modules it is not related "
                                                              "to: what similarity between unrelated models looks like here.",
    "gloss.null.term": "null distribution", "gloss.null.text": "What the statistic looks like when the two models were trained "
                                                               "independently; the observed value is judged against it.",
    # lineage, licenses, disclosure, tokenizer, waivers
    "lin.declared": "Declared by the submission", "lin.detected": "Detected in the weights", "lin.none": "none",
    "lin.module": "Module", "lin.reference": "Reference", "lin.hints": "Lineage hints in the submission's files",
    "lin.file": "File", "lin.key": "Key", "lin.value": "Value", "lin.hint_kind": "Kind",
    "lic.file": "File", "lic.detected": "Detected license", "lic.confidence": "Confidence", "lic.obligations": "Obligations (quoted)",
    "lic.none": "No license file or license metadata was found.",
    "disc.from": "From {file}.", "disc.name": "Component", "disc.role": "Role", "disc.revision": "Revision", "disc.license": "License",
    "disc.missing": "missing", "disc.empty": "The submission declares no third-party components.",
    "disc.none": "No inventory (THIRD_PARTY.yaml or third_party: in the model card).",
    "tok.reference": "Reference", "tok.jaccard": "Vocabulary overlap (Jaccard)", "tok.same_id": "Same token ids",
    "tok.chance": "Chance level", "tok.merges": "Merges agreement", "tok.none": "No tokenizer was compared.",
    "tok.note": "Tokenizer reuse is reported separately and is never evidence of copied weights.",
    "waiver.criterion": "Criterion", "waiver.owner": "Granted by", "waiver.expires": "Expires", "waiver.reason": "Reason",
    "waiver.scope": "Scope", "waiver.state": "State", "waiver.active": "applied (original status: {status})",
    "waiver.expired": "expired, not applied", "waiver.none": "No waiver applies to this audit.", "waiver.any": "any",
    # not evaluated
    "notev.what": "What", "notev.reason": "Why", "notev.none": "Everything the rule pack requires was evaluated.",
    "notev.tensors": "{count} tensor pair(s) of {module} (e.g. {examples})",
    "notev.coverage": "only {coverage} of its parameters were compared by a decisive statistic",
    # reproducibility
    "repro.command": "Command", "repro.versions": "Versions", "repro.package": "Package", "repro.version": "Version",
    "repro.platform": "Platform", "repro.hashes": "The submission's file digests are in section 1, with the rule pack's and the "
                                                 "references' digests; the canonical JSON report is report.json beside this file, and "
                                                 "is attached to the PDF.",
    "repro.created": "Report date: {date}.",
    # limitations
    "limits.registry": "The weights test only finds derivations from models in the registry: a pass means 'independent of every "
                       "registered reference', not 'independent of every model'.",
    "limits.anchors": "A hidden-dimension permutation is recovered from shared anchors; a decoder transplanted without its "
                      "embeddings and tokenizer and permuted can be missed.",
    "limits.weak": "Norm weights, biases, identical architecture and identical tokenizers are not evidence of copied weights.",
    "limits.licenses": "License detection knows the catalogue's licenses; any other text is reported as unknown, never guessed.",
    "limits.legal": "This report is a technical audit, not legal advice. License obligations are quoted, not interpreted.",
    "signoff.evaluator": "Evaluator", "signoff.date": "Date", "signoff.signature": "Signature",
    # index (batch)
    "index.title": "Audit reports", "index.rank": "#", "index.submission": "Submission", "index.verdict": "Verdict",
    "index.share": "Derived share", "index.failed": "Failed criteria", "index.report": "Report", "index.error": "Error",
    "index.review": "needs review: {modules}",
    "index.summary": "{n} submission(s): {counts}.", "index.created": "Rule pack {pack}; {date}.",
    # terminal
    "term.modules": "{submission}: modules", "term.criteria": "{submission}: criteria ({pack} v{version})",
    "term.verdict": "verdict: {verdict}   derived parameter share: {share}", "term.reports": "reports: {paths}",
    "term.index": "index: {paths}", "term.batch": "{n} submissions ({pack})", "term.layers": "layers",
    "term.best": "best match", "term.error": "error",
    # the verdict stage's sentences (checker/verdicts): each reproduces the English text of the result exactly.
    # Format specs: p (log10 p-value), pct0/pct1/pct2, num2/num3, z, int, g, g2, raw (numbers, the same in every
    # language); stat, kind, status (identifiers in words); commas, semicolons (lists).
    "v.list": "{items:semicolons}", "v.na": "n/a", "v.not_recorded": "not recorded",
    "v.mod.no_references": "no reference models are registered: nothing to compare with",
    "v.mod.identical": "{share:pct1} of its parameters are byte-identical to {reference}:{reference_module}",
    "v.mod.derived": "matches {reference}:{reference_module} ({statistic} {score:num3}, z {z:z}, p {p:p} after correction for {tests} tests)",
    "v.mod.independent": "no reference module matches at p < {significance:g} after correction for {tests} tests (best p {p:p})",
    "v.mod.wrong_statistic": "no comparison by the statistic the rule pack requires ({statistic})",
    "v.mod.weak_only": "only weak evidence (norm weights, biases) could be compared with the references",
    "v.mod.not_comparable": "no comparison was possible: {reasons:semicolons}",
    "v.skip.fixed_table": "not evidence: fixed table ({kind:kind})",
    "v.skip.fixed_table_shared": "not evidence: fixed table (shared by {references:int} registered references)",
    "v.skip.few_anchors": "fewer than {minimum} anchor rows",
    "v.skip.few_tokens": "fewer than 16 shared tokens", "v.skip.patch_sizes": "patch sizes differ",
    "v.skip.hidden_sizes": "hidden sizes differ ({hidden} vs {reference_hidden}) and no anchor aligns them",
    "v.skip.no_statistic": "not compared: a 2-D tensor of role '{role}' that no decisive statistic covers",
    "v.skip.not_compared": "not compared: a {ndim}-D tensor of role '{role}' that no known layout splits into matrices",
    "v.skip.expert_axes": "not compared: no axis of the expert tensor {shape} has the hidden width {hidden}",
    "v.skip.expert_split": "not compared: the fused gate and up expert tensor has an odd number of units ({units})",
    "v.mod.no_compatible": "no registered reference has a module of a compatible kind",
    "v.mod.review": "evidence of derivation from {reference}:{reference_module} ({statistic} {score:num3}, z {z:z}, p {p:p} after "
                    "correction for {tests} tests of its kind) that no calibrated null can make significant: a human decides",
    "v.mod.uncompared": "{uncompared:pct1} of its parameters were compared with no reference (at most {max:pct1} may be), and what "
                        "was compared matches none (best p {p:p})",
    "v.mod.fixed_only": "it holds only fixed tables (formulas, masks, constants), which are never evidence",
    "v.weights.module": "{module} ({kind}, {share:pct1} of parameters): {status}: {reason}",
    "v.weights.no_registry": "the registry holds no reference models to compare with (add them with 'fromscratch registry add')",
    "v.weights.fail": "{n} module(s) derive from a registered reference: {modules:commas}",
    "v.weights.derived_item": "{module} ({status}, from {reference})",
    "v.weights.review": "{n} module(s) need a human review: evidence of derivation that no calibrated null can make significant: "
                        "{modules:commas}",
    "v.weights.review_item": "{module} (from {reference})",
    "v.weights.untested": "{n} module(s) holding {share:pct1} of the parameters could not be tested: {modules}",
    "v.weights.no_modules": "the submission has no module of the kinds this criterion covers ({kinds})",
    "v.weights.pass": "all {tested} tested modules are independent of the {refs} registered reference(s) at p < {significance:g}",
    "v.weights.pass_tiny_untested": "all {tested} tested modules are independent of the {refs} registered reference(s) at "
                                    "p < {significance:g}; {n} tiny module(s) ({share:pct2} of the parameters) could not be tested",
    "v.share.module": "{module}: {derived:int} of {parameters:int} parameters ({share:pct2}) {status}",
    "v.share.result": "derived parameter share {share:pct2} layer by layer, {modules:pct2} by whole modules (allowed at most {max:pct2})",
    "v.share.untested": "derived parameter share {share:pct2} layer by layer, {modules:pct2} by whole modules (allowed at most "
                        "{max:pct2}), but {untested:pct2} of the parameters could not be tested",
    "v.tok.none": "no tokenizer to compare (the submission or the references ship none)",
    "v.tok.evidence": "{reference}: vocabulary Jaccard {jaccard:num3}, same-id fraction {same_id:num3} (chance {chance:g2}), "
                      "merges agreement {merges:raw}",
    "v.tok.reused": "tokenizer reused from {references} (this alone is not evidence of copied weights)",
    "v.tok.pass": "the tokenizer is not a copy of a registered reference's",
    "v.arch.same": "same module layout and shapes as {reference} (not evidence of copied weights)",
    "v.arch.summary": "model_type {model_type}, architectures {architectures}; module map(s) {maps:commas}; modules: {modules:semicolons}",
    "v.arch.module": "{module} ({kind}, {layers} layers, {parameters:int} parameters)", "v.arch.unknown": "unknown",
    "v.waiver.applied": "{finding} [waived by {owner} until {expires}: {reason}]",
    "v.waiver.applied_scoped": "{finding} [waived for {module} / {reference} by {owner} until {expires}: {reason}]",
    "v.waiver.not_covering": "{finding} [a waiver by {owner} is scoped to {module} / {reference} and does not cover this finding]",
    "v.waiver.expired": "{finding} [waiver by {owner} expired on {expires}]",
    "v.waiver.any_module": "any module", "v.waiver.any_reference": "any reference",
    "v.lic.denied": "{license} is on the deny list",
    "v.lic.not_allowed": "{license} is not on the allow list ({allowed})",
    "v.lic.third_party": "{license} is a third-party model license",
    "v.lic.obligation": "{license} imposes a denied obligation ({obligation}): \u201c{clause}\u201d",
    "v.lic.not_recorded": "the license of {reference} is not recorded in the registry",
    "v.lic.problem": "{problem} [{where:commas}]",
    "v.lic.where_derived": "module {module} (from {reference})", "v.lic.where_module": "module {module}",
    "v.lic.finding": "{file}: {license} (confidence {confidence:num2}, {source})",
    "v.lic.finding_obligations": "{file}: {license} (confidence {confidence:num2}, {source}); obligations: {obligations}",
    "v.lic.inherits": "module {module} derives from {reference}, licensed {license}: its terms apply to that module",
    "v.lic.unknown_inherited": "module {module} inherits {license} from {reference}, a license the catalogue does not know",
    "v.lic.unknown_inherited_all": "{items:semicolons} (unknown is never a pass)",
    "v.lic.none_found": "no license was found (unknown is never a pass)",
    "v.lic.none_confident": "no license was identified with confidence \u2265 {min:num2} (unknown is never a pass)",
    "v.lic.doubtful": "{n} license source(s) could not be identified: {files}",
    "v.lic.pass": "licensed under {licenses}; no denied license or obligation",
    "v.lin.hint": "{file}: {key} = {value}",
    "v.lin.undeclared": "undeclared derivation: module {module} ({share:pct1} of parameters) derives from {reference}, "
                        "which the submission does not declare",
    "v.lin.declared_detected": "declared and detected: module {module} derives from {reference} (declared as {declared}); "
                               "{reference}'s license ({license}) applies to it",
    "v.lin.third_party": "third-party pre-trained ancestor declared: {ancestor}",
    "v.lin.not_detected": "declared ancestor {ancestor} not detected ({why}): review",
    "v.lin.not_registered": "its weights are not in the registry, so the claim cannot be checked",
    "v.lin.no_derivation": "the weights show no derivation from it",
    "v.lin.review": "module(s) under review may derive from an undeclared reference: {modules:commas}",
    "v.lin.none": "no ancestor declared and no derivation detected",
    "v.lin.agrees": "declared lineage agrees with the weights",
    "v.lin.unverified": "nothing was compared, so no derivation can be ruled out ({why})",
    "v.lin.no_module_compared": "no module's weights could be compared with a registered reference",
    "v.disc.missing_used": "no third-party inventory (THIRD_PARTY.yaml or `third_party:` in the model card), yet the submission "
                           "uses or declares: {names}",
    "v.disc.missing": "no third-party inventory (THIRD_PARTY.yaml with `components: []` declares that there are none)",
    "v.disc.component": "{name} ({role}), revision {revision}, license {license}", "v.disc.missing_value": "missing",
    "v.disc.missing_fields": "{name}: missing {fields}",
    "v.disc.undisclosed": "detected ancestor {reference} is not in the inventory",
    "v.disc.undeclared_base": "declared base model {name} is not in the inventory",
    "v.disc.fail": "{file}: {problems:semicolons}",
    "v.disc.pass": "{file} lists {n} third-party component(s), complete",
}
