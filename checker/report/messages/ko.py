"""한국어: 보고서와 터미널의 모든 고정 문구 (영어 카탈로그와 같은 키)."""

MESSAGES = {
    # 상태 (판정, 기준, 모듈)
    "status.pass": "통과", "status.fail": "불합격", "status.inconclusive": "판단 불가", "status.warn": "경고",
    "status.not_applicable": "해당 없음", "status.independent": "독립", "status.derived": "파생",
    "status.identical": "동일 복제", "status.review": "검토 필요", "status.error": "오류",
    # 도구 식별자의 한국어 명칭
    "severity.critical": "치명", "severity.major": "중대", "severity.minor": "경미", "severity.info": "참고",
    "severity.unknown": "{name}",
    "ckind.weights": "가중치 독립성", "ckind.derived_share": "파생 파라미터 비율", "ckind.license": "라이선스",
    "ckind.lineage": "계보", "ckind.disclosure": "제3자 구성요소 공개", "ckind.tokenizer": "토크나이저",
    "ckind.architecture": "아키텍처", "ckind.unknown": "{name}",
    "kind.decoder": "언어 디코더", "kind.encoder": "인코더", "kind.vision_encoder": "비전 인코더",
    "kind.audio_encoder": "오디오 인코더", "kind.embeddings": "토큰 임베딩", "kind.lm_head": "출력층(LM 헤드)",
    "kind.projector": "프로젝터", "kind.generic": "기타 레이어", "kind.other": "기타", "kind.unknown": "{name}",
    "kind.sinusoid_1d": "1차원 사인파 위치 테이블", "kind.sincos_2d": "2차원 사인·코사인 위치 테이블", "kind.rotary_inv_freq": "로터리 inv_freq",
    "kind.alibi_slopes": "ALiBi 기울기", "kind.causal_mask": "인과 마스크", "kind.position_ids": "위치 ID", "kind.identity": "단위 행렬",
    "kind.constant": "상수 텐서",
    "stat.heldout_row_pearson": "교차 검증 단위 상관계수", "stat.shared_token_pearson": "공유 토큰 행 상관계수",
    "stat.hidden_gram_mantel": "레이어 유사도 선별 검사 (그램 행렬 맨텔 상관)",
    "stat.rotation_aligned_row_pearson": "맞춘 회전을 거친 단위 상관계수 (검토용)",
    "stat.unknown": "통계량 {name}",
    "role.q": "쿼리 투영", "role.k": "키 투영", "role.v": "값 투영", "role.o": "어텐션 출력",
    "role.qkv": "결합 쿼리·키·값", "role.gate": "FFN 게이트", "role.up": "FFN 상향 투영", "role.down": "FFN 하향 투영",
    "role.embed": "토큰 임베딩", "role.lm_head": "LM 헤드", "role.pos_embed": "위치 임베딩",
    "role.type_embed": "토큰 유형 임베딩", "role.patch_embed": "패치 임베딩", "role.norm": "정규화 가중치",
    "role.bias": "편향", "role.linear": "선형 가중치", "role.unknown": "{name}",
    # 보고서 틀
    "report.title": "감사 보고서", "report.verdict": "판정", "report.derived_share": "파생 파라미터 비율",
    "report.module_share": "레이어 단위. 모듈 단위로는 {share}", "report.coverage": "비교 범위",
    "report.running": "{submission} · 판정: {verdict}",
    "pdf.page_before": "", "pdf.page_between": " / ", "pdf.page_after": " 쪽",
    "sec.cover": "1. 표지", "sec.summary": "2. 요약", "sec.criteria": "3. 평가 기준", "sec.weights": "4. 모듈별 가중치 증거",
    "sec.glossary": "용어 설명", "sec.lineage": "5. 계보: 신고 내용과 검출 결과", "sec.licenses": "6. 라이선스",
    "sec.disclosure": "7. 제3자 구성요소 공개", "sec.waivers": "8. 예외 승인", "sec.notev": "9. 평가하지 못한 항목",
    "sec.repro": "10. 재현 방법", "sec.limits": "11. 한계", "sec.signoff": "확인 서명", "sec.tokenizer": "토크나이저",
    # 표지
    "cover.submission": "제출물", "cover.path": "경로", "cover.source": "출처", "cover.source.local": "로컬 폴더",
    "cover.source.huggingface": "Hugging Face Hub", "cover.revision": "리비전", "cover.parameters": "파라미터 수",
    "cover.files": "제출 파일", "cover.file": "파일", "cover.bytes": "크기(바이트)", "cover.sha256": "SHA-256",
    "cover.audited": "가중치 감사 대상", "cover.yes": "예", "cover.rulepack": "규칙 팩", "cover.version": "버전",
    "cover.programme": "사업 요건", "cover.tool": "도구", "cover.date": "감사 일시",
    "cover.registry": "레지스트리 스냅숏 (참조 모델)", "cover.reference": "참조 모델", "cover.publisher": "배포자",
    "cover.license": "라이선스", "cover.source_rev": "출처 및 리비전", "cover.local_pinned": "로컬 폴더 (파일 해시로 고정)",
    "cover.weight_files": "가중치 파일 (SHA-256)", "cover.fingerprint": "지문 (SHA-256)", "cover.not_recorded": "기록 없음",
    "cover.significance": "검정별 유의수준 {alpha}, 모듈 × 참조 모델 비교 {tests}건에 대해 본페로니 보정을 적용하였습니다.",
    "cover.architecture": "아키텍처 (참고 정보)",
    # 요약
    "summary.verdict.pass": "제출물 {submission}은(는) 규칙 팩 {pack}의 판정에 영향을 주는 모든 기준을 충족하여 통과입니다.",
    "summary.verdict.fail": "제출물 {submission}은(는) 규칙 팩 {pack}의 판정 기준 중 하나 이상을 충족하지 못하여 불합격입니다.",
    "summary.verdict.inconclusive": "제출물 {submission}은(는) 규칙 팩 {pack}이 요구하는 항목 중 평가하지 못한 것이 있어 판단 불가입니다.",
    "summary.derived": "모듈 {module}({kind}, 전체 파라미터의 {share}, 파라미터 {parameters}개)은(는) 참조 모델 {reference}의 "
                       "{reference_module} 모듈에서 파생되었습니다. 대응 레이어(제출물 → 참조 모델): {layers}. "
                       "확실성: 전체 비교 횟수로 보정한 p {p} (z {z}).",
    "summary.identical": "모듈 {module}({kind}, 전체 파라미터의 {share}, 파라미터 {parameters}개)은(는) 참조 모델 {reference}의 "
                         "{reference_module} 모듈의 복제본입니다. 파라미터의 {identical}가 바이트 단위로 동일합니다.",
    "summary.share": "제출물 파라미터 중 등록된 참조 모델에서 파생된 비율은 모두 {share}입니다.",
    "summary.nothing_copied": "제출물의 어떤 모듈도 등록된 참조 모델 {n}개 중 어느 것에서도 파생되지 않았습니다.",
    "summary.open_modules": "가중치로 판정하지 못한 모듈: {modules} ('평가하지 못한 항목' 참조).",
    "summary.review_modules": "사람의 검토가 필요한 모듈: {modules}. 가중치에 파생의 증거가 있으나 보정된 귀무분포로 유의성을 "
                              "판단할 수 없어, 도구는 이 모듈들을 독립으로도 파생으로도 판정하지 않습니다.",
    "summary.failed": "충족하지 못한 기준", "summary.what": "확인된 사항", "summary.change": "판정이 달라질 수 있는 조건",
    "summary.change.derived": "파생된 모듈 {modules}을(를) 처음부터 다시 학습하거나 제거한 뒤 다시 감사하는 경우.",
    "summary.change.criterion": "기준 {id}을(를) 충족하는 경우: {title}.",
    "summary.change.inconclusive": "9절 '평가하지 못한 항목'을 평가할 수 있게 되는 경우. 그 전에는 판정할 수 없습니다.",
    "summary.change.registry": "가중치 검사는 등록된 참조 모델 {n}개로부터의 파생만 찾아냅니다. 제출물이 파생되었을 수 있는 "
                               "다른 모델을 등록하고 다시 감사하면 판정이 달라질 수 있습니다.",
    # 평가 기준
    "crit.id": "번호", "crit.title": "기준", "crit.kind": "검사 항목", "crit.severity": "중요도", "crit.status": "결과",
    "crit.finding": "판단 내용", "crit.evidence": "증거", "crit.evidence_items": "증거 {n}건",
    "crit.see": "참조", "crit.remediation": "조치 방법", "crit.waived": "예외 승인됨", "crit.waiver_expired": "예외 승인 만료",
    "crit.detail": "세부 내용 (도구 원문)",
    "finding.pass": "기준을 충족합니다.", "finding.fail": "기준을 충족하지 못합니다.", "finding.warn": "주의가 필요합니다.",
    "finding.inconclusive": "판단할 수 없습니다.", "finding.not_applicable": "해당 사항이 없습니다.",
    # 가중치
    "report.null_hypothesis": "가중치 검정의 귀무가설: 독립적인 초기화와 학습. 한 모듈의 가중치가 독립적으로 초기화되고 학습된 "
                              "두 모델 사이에서 나올 수 있는 것보다 참조 모델의 가중치와 더 유사하면 그 모듈은 파생된 것으로 "
                              "판정됩니다. 따라서 참조 모델의 초기 가중치(같은 난수 시드)에서 출발한 모델은 이후 다른 데이터로 "
                              "학습했더라도 그 참조 모델에서 파생된 것으로 판정됩니다.",
    "w.module": "모듈", "w.kind": "종류", "w.parameters": "파라미터 수", "w.share": "비율", "w.coverage": "비교 범위",
    "w.status": "결과", "w.best": "가장 유사한 참조 모델", "w.statistic": "통계량", "w.score": "점수", "w.z": "z",
    "w.p": "p", "w.p_corrected": "p (보정)", "w.layer_map": "레이어 대응 (제출물 → 참조 모델)", "w.reason": "사유",
    "w.none": "비교한 참조 모듈 없음", "w.overview": "개요", "w.other_refs": "비교한 모든 참조 모델",
    "w.identical": "바이트 동일 비율", "w.derived_parameters": "참조 모델에 대응된 파라미터 (레이어 단위)",
    "w.derived_parameters_value": "파라미터 {total}개 중 {parameters}개 (모듈의 {share})", "w.weak_only": "약한 증거만 있음", "w.heatmap": "레이어 × 레이어 z 점수",
    "w.heatmap_note": "붉을수록 증거가 강합니다. 테두리가 있는 칸이 레이어 대응입니다.",
    "w.null": "귀무분포와 관측값", "w.null_note": "독립적으로 학습한 경우 z 점수는 표준정규분포를 따릅니다. "
              "붉은 선은 가장 유사한 레이어 쌍의 관측 z입니다.",
    "w.alignment": "복원된 정렬", "w.hidden": "은닉 차원", "w.identity": "저장된 순서대로 비교 (순열 없음)",
    "w.rotated": "{source}에서 맞춘 직교 변환으로 잔차 스트림이 회전됨 (기준점 z {anchor_z}): 이를 거친 모든 비교는 검토용 증거입니다",
    "w.permuted": "순열 복원: 차원 {dims}개 중 {moved}개 이동, 부호 반전 {flips}개 (기준점: {source}; 기준점 z {anchor_z})",
    "w.not_adopted": "채택된 정렬 없음: 가장 잘 맞는 기준점({source})의 일치도가 z {anchor_z}로 채택 기준 {min_z}보다 낮아 "
                     "순열을 찾지 못했습니다",
    "w.aligned": "{source}(으)로 정렬: 이동한 차원 없음",
    "w.dropped": "삭제된 참조 모델 레이어", "w.inserted": "삽입된 제출물 레이어", "w.repeated": "반복된 참조 모델 레이어",
    "w.layer": "레이어", "w.role": "텐서 역할", "w.scale": "배율", "w.spread": "배율 분산", "w.units_moved": "이동한 단위",
    "w.weak": "약한 증거 (정규화 가중치 및 편향): 참고용이며 판정에 사용하지 않음",
    "w.weak_note": "정규화 가중치의 단순 코사인 유사도는 서로 무관한 모델 사이에서도 약 0.99입니다. 이 수치는 판정에 사용하지 않습니다.",
    "w.tensor": "텐서", "w.pearson": "피어슨 상관", "w.raw_cosine": "단순 코사인", "w.decisive": "판정 사용", "w.no": "아니오",
    "w.baseline": "기준선: 관련 없는 참조 모듈 {n}개와 비교한 최고 점수는 {score} (z {z})입니다.",
    "w.fixed_share": "고정 테이블(사인파 위치 테이블, 마스크, 상수: 같은 형태의 모든 모델에서 동일)이 파라미터의 {share}를 "
                     "차지합니다. 이들은 비교하지 않으며 증거가 아닙니다.",
    "w.fixed_module": "증거 아님: 고정 테이블, 이 모듈 파라미터의 {share}.",
    "w.skipped": "비교하지 못한 항목", "w.no_evidence": "참조 모델과 비교할 수 있는 모듈이 없습니다.",
    "weak.one_of": "{names} 중 하나", "weak.unnamed": "(텐서 이름 없음)",
    "fig.heatmap": "{module}과(와) {reference}의 레이어별 z 점수", "fig.sub_layer": "제출물 레이어",
    "fig.ref_layer": "참조 모델 레이어", "fig.null_title": "z의 귀무분포와 관측값",
    "fig.null_label": "귀무분포: 독립 학습, N(0, 1)", "fig.observed": "관측값", "fig.baseline": "무관한 참조",
    # 용어 설명
    "gloss.term": "용어", "gloss.meaning": "설명",
    "gloss.heldout_row_pearson.term": "교차 검증 단위 상관계수",
    "gloss.heldout_row_pearson.text": "참조 모델의 각 단위(뉴런 또는 어텐션 헤드 행)를 은닉 열의 절반으로 제출물에서 가장 비슷한 "
                                      "단위와 짝지은 뒤, 나머지 절반에서 상관계수를 측정합니다. 독립적으로 학습한 모델은 0에 가깝고, "
                                      "파생된 모듈은 단위의 순서나 배율을 바꾸어도 높게 나옵니다.",
    "gloss.shared_token_pearson.term": "공유 토큰 행 상관계수",
    "gloss.shared_token_pearson.text": "두 어휘에 모두 있는 토큰에 대해, 은닉 차원을 정렬한 뒤 임베딩(또는 출력) 행의 상관계수를 "
                                       "측정합니다. 독립적으로 학습한 모델은 0에 가깝습니다.",
    "gloss.hidden_gram_mantel.term": "레이어 유사도 선별 검사",
    "gloss.hidden_gram_mantel.text": "제출물의 모든 레이어를 먼저 참조 모델의 모든 레이어와 가중치 열 사이의 상관(은닉 차원 128개의 그램 행렬)으로 "
                                     "비교하며, 은닉 차원의 이름을 무작위로 바꾸는 귀무분포에 대한 맨텔 검정을 사용합니다. 이 검사가 지목한 쌍만 "
                                     "교차 검증 단위 상관계수로 검정하며, 지목한 쌍이 없으면 이 검사의 p값을 보고합니다. 이 값만으로는 판정 "
                                     "기준에 도달할 수 없습니다.",
    "gloss.rotation_aligned_row_pearson.term": "맞춘 회전을 거친 단위 상관계수",
    "gloss.rotation_aligned_row_pearson.text": "제출물의 잔차 스트림이 직교 변환으로 회전된 것으로 보이면(토큰 또는 픽셀 기하 구조는 참조 모델과 같지만 "
                                               "순열로는 정렬되지 않으면) 공유 기준점에서 변환을 맞추고 모든 행렬을 그 변환을 거쳐 비교합니다. "
                                               "맞춘 변환에는 정확한 귀무분포가 없으므로 이 증거는 모듈을 사람의 검토로 보낼 뿐 단독으로 판정을 내리지 않습니다.",
    "gloss.z.term": "z 점수", "gloss.z.text": "관측 점수가 독립 학습에서 기대되는 값보다 표준편차 몇 배만큼 높은지를 나타냅니다. "
                                              "약 5를 넘는 값은 우연히 나오지 않습니다.",
    "gloss.p.term": "p값", "gloss.p.text": "모듈을 독립적으로 학습했다고 가정할 때 이만큼 높은 점수가 나올 확률입니다.",
    "gloss.p_corrected.term": "p (보정)", "gloss.p_corrected.text": "p값에 비교 횟수를 곱한 값(본페로니 보정)입니다. 많은 쌍을 "
                                                                     "비교한다고 해서 증거가 만들어지지 않도록 합니다.",
    "gloss.coverage.term": "비교 범위", "gloss.coverage.text": "판정에 쓰이는 통계량으로 참조 모델과 비교한 파라미터의 비율입니다. "
                                                              "나머지는 '평가하지 못한 항목'에 적습니다.",
    "gloss.layer_map.term": "레이어 대응", "gloss.layer_map.text": "제출물의 각 레이어가 유의하게 일치하는 참조 모델 레이어입니다 "
                                                                  "(삭제·반복·삽입된 레이어가 여기에 드러납니다).",
    "gloss.alignment.term": "복원된 정렬", "gloss.alignment.text": "두 모델이 공유하는 기준점(토큰 또는 패치 임베딩)으로 찾아낸 "
                                                                  "은닉 차원의 재배열과 부호 반전입니다.",
    "gloss.scale.term": "배율, 배율 분산", "gloss.scale.text": "가중치 행렬에 곱해진 배율(1이면 변화 없음)과 차원별 배율의 분산입니다 "
                                                              "(정규화 가중치를 행렬에 합친 경우 분산으로 나타납니다).",
    "gloss.units_moved.term": "이동한 단위", "gloss.units_moved.text": "참조 모델의 단위가 제출물에서 다른 위치에 있는 비율입니다 "
                                                                      "(뉴런·헤드의 순서 변경, 가지치기, 삽입).",
    "gloss.weak.term": "약한 증거", "gloss.weak.text": "정규화 가중치와 편향의 비교입니다. 거의 일정한 벡터이므로 유사하더라도 "
                                                       "아무것도 증명하지 않으며, 참고용으로만 보여 주고 판정에 사용하지 않습니다.",
    "gloss.baseline.term": "기준선", "gloss.baseline.text": "관련 없는 참조 모듈과 비교했을 때의 최고 점수로, 무관한 모델 사이의 "
                                                            "유사도가 어느 정도인지를 보여 줍니다.",
    "gloss.null.term": "귀무분포", "gloss.null.text": "두 모델을 독립적으로 학습했을 때 통계량이 보이는 분포이며, 관측값은 이 분포에 "
                                                      "비추어 판단합니다.",
    # 계보, 라이선스, 공개, 토크나이저, 예외 승인
    "lin.declared": "제출물이 신고한 내용", "lin.detected": "가중치에서 검출된 내용", "lin.none": "없음",
    "lin.module": "모듈", "lin.reference": "참조 모델", "lin.hints": "제출 파일의 계보 단서",
    "lin.file": "파일", "lin.key": "키", "lin.value": "값", "lin.hint_kind": "종류",
    "lic.file": "파일", "lic.detected": "검출된 라이선스", "lic.confidence": "신뢰도", "lic.obligations": "의무 조항 (원문 인용)",
    "lic.none": "라이선스 파일이나 라이선스 메타데이터를 찾지 못했습니다.",
    "disc.from": "{file}에서 읽음.", "disc.name": "구성요소", "disc.role": "역할", "disc.revision": "리비전", "disc.license": "라이선스",
    "disc.missing": "누락", "disc.empty": "제출물이 신고한 제3자 구성요소가 없습니다.",
    "disc.none": "구성요소 목록이 없습니다 (THIRD_PARTY.yaml 또는 모델 카드의 third_party:).",
    "tok.reference": "참조 모델", "tok.jaccard": "어휘 중복도 (자카드)", "tok.same_id": "동일 토큰 ID 비율",
    "tok.chance": "우연 수준", "tok.merges": "병합 규칙 일치도", "tok.none": "비교한 토크나이저가 없습니다.",
    "tok.note": "토크나이저 재사용은 별도로 보고하며, 가중치 복제의 증거가 아닙니다.",
    "waiver.criterion": "기준", "waiver.owner": "승인자", "waiver.expires": "만료일", "waiver.reason": "사유",
    "waiver.scope": "범위", "waiver.state": "상태", "waiver.active": "적용됨 (원래 결과: {status})",
    "waiver.expired": "만료되어 적용하지 않음", "waiver.none": "이 감사에 적용되는 예외 승인이 없습니다.", "waiver.any": "전체",
    # 평가하지 못한 항목
    "notev.what": "대상", "notev.reason": "사유", "notev.none": "규칙 팩이 요구하는 항목을 모두 평가하였습니다.",
    "notev.tensors": "{module}의 텐서 쌍 {count}개 (예: {examples})",
    "notev.coverage": "파라미터의 {coverage}만 판정용 통계량으로 비교하였습니다",
    # 재현 방법
    "repro.command": "명령어", "repro.versions": "버전", "repro.package": "패키지", "repro.version": "버전",
    "repro.platform": "플랫폼", "repro.hashes": "제출 파일의 해시는 1절에, 규칙 팩과 참조 모델의 해시도 같은 절에 있습니다. "
                                               "정식 JSON 보고서는 이 파일과 같은 폴더의 report.json이며, PDF에는 첨부 파일로 들어 있습니다.",
    "repro.created": "보고서 작성 일시: {date}.",
    # 한계
    "limits.registry": "가중치 검사는 레지스트리에 등록된 모델로부터의 파생만 찾아냅니다. 통과는 '등록된 모든 참조 모델과 독립'이라는 "
                       "뜻이며 '모든 모델과 독립'이라는 뜻이 아닙니다.",
    "limits.anchors": "은닉 차원의 순열은 공유 기준점으로 복원합니다. 임베딩과 토크나이저 없이 이식하고 순서를 바꾼 디코더는 "
                      "놓칠 수 있습니다.",
    "limits.weak": "정규화 가중치, 편향, 동일한 아키텍처, 동일한 토크나이저는 가중치 복제의 증거가 아닙니다.",
    "limits.licenses": "라이선스 검출은 카탈로그에 있는 라이선스만 식별합니다. 그 밖의 문서는 추측하지 않고 '알 수 없음'으로 보고합니다.",
    "limits.legal": "이 보고서는 기술 감사 결과이며 법률 자문이 아닙니다. 라이선스 의무 조항은 원문을 인용할 뿐 해석하지 않습니다.",
    "signoff.evaluator": "평가자", "signoff.date": "일자", "signoff.signature": "서명",
    # 색인 (일괄 감사)
    "index.title": "감사 보고서 목록", "index.rank": "순위", "index.submission": "제출물", "index.verdict": "판정",
    "index.share": "파생 비율", "index.failed": "충족하지 못한 기준", "index.report": "보고서", "index.error": "오류",
    "index.review": "검토 필요: {modules}",
    "index.summary": "제출물 {n}건: {counts}.", "index.created": "규칙 팩 {pack}; {date}.",
    # 터미널
    "term.modules": "{submission}: 모듈", "term.criteria": "{submission}: 평가 기준 ({pack} v{version})",
    "term.verdict": "판정: {verdict}   파생 파라미터 비율: {share}", "term.reports": "보고서: {paths}",
    "term.index": "목록: {paths}", "term.batch": "제출물 {n}건 ({pack})", "term.layers": "레이어",
    "term.best": "가장 유사한 참조", "term.error": "오류",
    # 판정 단계의 문장 (checker/verdicts): 영어 카탈로그와 같은 키, 같은 자리표시자, 같은 숫자 형식.
    # 숫자 형식: p, pct0/pct1/pct2, num2/num3, z, int, g, g2, raw. 식별자: stat, kind, status. 목록: commas, semicolons.
    "v.list": "{items:semicolons}", "v.na": "해당 없음", "v.not_recorded": "기록 없음",
    "v.mod.no_references": "등록된 참조 모델이 없어 비교할 대상이 없습니다",
    "v.mod.identical": "파라미터의 {share:pct1}가 {reference}:{reference_module}와(과) 바이트 단위로 동일합니다",
    "v.mod.derived": "{reference}:{reference_module}와(과) 일치합니다 ({statistic:stat} {score:num3}, z {z:z}, "
                     "비교 {tests}건으로 보정한 p값 {p:p})",
    "v.mod.independent": "비교 {tests}건으로 보정하였을 때 p < {significance:g} 수준에서 일치하는 참조 모듈이 없습니다 "
                         "(가장 작은 보정 후 p값 {p:p})",
    "v.mod.wrong_statistic": "규칙 팩이 요구하는 통계량({statistic:stat})으로 비교한 결과가 없습니다",
    "v.mod.weak_only": "참조 모델과는 약한 증거(정규화 가중치, 편향)만 비교할 수 있었습니다",
    "v.mod.not_comparable": "비교할 수 없었습니다: {reasons:semicolons}",
    "v.skip.fixed_table": "증거 아님: 고정 테이블({kind:kind})",
    "v.skip.fixed_table_shared": "증거 아님: 고정 테이블(등록된 참조 모델 {references:int}개에 동일하게 존재)",
    "v.skip.few_anchors": "기준점 행이 {minimum}개 미만입니다",
    "v.skip.few_tokens": "공유 토큰이 16개 미만입니다", "v.skip.patch_sizes": "패치 크기가 다릅니다",
    "v.skip.hidden_sizes": "은닉 차원이 다르고({hidden} 대 {reference_hidden}) 이를 정렬할 기준점이 없습니다",
    "v.skip.no_statistic": "비교하지 않음: 결정적 통계량이 다루지 않는 2차원 텐서(역할 '{role}')입니다",
    "v.skip.not_compared": "비교하지 않음: 알려진 어떤 배치로도 행렬로 나눌 수 없는 {ndim}차원 텐서(역할 '{role}')입니다",
    "v.skip.expert_axes": "비교하지 않음: 전문가(expert) 텐서 {shape}의 어느 축도 은닉 폭 {hidden}과 같지 않습니다",
    "v.skip.expert_split": "비교하지 않음: gate와 up을 합친 전문가 텐서의 단위 수가 홀수입니다({units})",
    "v.mod.no_compatible": "등록된 참조 모델 중 종류가 호환되는 모듈을 가진 모델이 없습니다",
    "v.mod.review": "{reference}:{reference_module}에서 파생되었다는 증거가 있으나({statistic:stat} {score:num3}, z {z:z}, "
                    "같은 종류의 비교 {tests}건으로 보정한 p값 {p:p}), 보정된 귀무분포로 유의성을 판단할 수 없는 통계량입니다: "
                    "사람이 판단합니다",
    "v.mod.uncompared": "파라미터의 {uncompared:pct1}는 어떤 참조 모델과도 비교하지 못했고(허용 상한 {max:pct1}), 비교한 부분은 "
                        "어느 참조 모듈과도 일치하지 않습니다 (가장 작은 보정 후 p값 {p:p})",
    "v.mod.fixed_only": "고정 표(수식, 마스크, 상수)만 담고 있어 증거가 되지 않습니다",
    "v.weights.module": "{module}({kind:kind}, 파라미터의 {share:pct1}): {status:status}: {reason}",
    "v.weights.no_registry": "레지스트리에 비교할 참조 모델이 없습니다 ('fromscratch registry add'로 등록하십시오)",
    "v.weights.fail": "모듈 {n}개가 등록된 참조 모델에서 파생되었습니다: {modules:commas}",
    "v.weights.derived_item": "{module}({status:status}, 출처 {reference})",
    "v.weights.review": "모듈 {n}개는 사람의 검토가 필요합니다. 파생의 증거가 있으나 보정된 귀무분포로 유의성을 판단할 수 "
                        "없습니다: {modules:commas}",
    "v.weights.review_item": "{module}(출처 {reference})",
    "v.weights.untested": "파라미터의 {share:pct1}를 차지하는 모듈 {n}개를 검사하지 못했습니다: {modules}",
    "v.weights.no_modules": "제출 모델에 이 기준이 다루는 종류({kinds})의 모듈이 없습니다",
    "v.weights.pass": "검사한 모듈 {tested}개 모두 p < {significance:g} 수준에서 등록된 참조 모델 {refs}개와 독립입니다",
    "v.weights.pass_tiny_untested": "검사한 모듈 {tested}개 모두 p < {significance:g} 수준에서 등록된 참조 모델 {refs}개와 "
                                    "독립입니다. 다만 매우 작은 모듈 {n}개(파라미터의 {share:pct2})는 검사하지 못했습니다",
    "v.share.module": "{module}: 파라미터 {parameters:int}개 중 {derived:int}개({share:pct2}), {status:status}",
    "v.share.result": "파생 파라미터 비율: 레이어 단위 {share:pct2}, 모듈 단위 {modules:pct2} (허용 상한 {max:pct2})",
    "v.share.untested": "파생 파라미터 비율: 레이어 단위 {share:pct2}, 모듈 단위 {modules:pct2} (허용 상한 {max:pct2}). "
                        "다만 파라미터의 {untested:pct2}는 검사하지 못했습니다",
    "v.tok.none": "비교할 토크나이저가 없습니다 (제출물 또는 참조 모델에 토크나이저가 없음)",
    "v.tok.evidence": "{reference}: 어휘 중복도(자카드) {jaccard:num3}, 동일 토큰 ID 비율 {same_id:num3} (우연 수준 {chance:g2}), "
                      "병합 규칙 일치도 {merges:raw}",
    "v.tok.reused": "{references}의 토크나이저를 재사용하였습니다 (이것만으로는 가중치 복제의 증거가 아닙니다)",
    "v.tok.pass": "토크나이저는 등록된 참조 모델의 토크나이저를 복제한 것이 아닙니다",
    "v.arch.same": "{reference}와(과) 모듈 구성 및 형태가 같습니다 (가중치 복제의 증거가 아님)",
    "v.arch.summary": "모델 유형(model_type) {model_type}, 아키텍처(architectures) {architectures}; 모듈 맵 {maps:commas}; 모듈: {modules:semicolons}",
    "v.arch.module": "{module} ({kind:kind}, 레이어 {layers}개, 파라미터 {parameters:int}개)", "v.arch.unknown": "알 수 없음",
    "v.waiver.applied": "{finding} [{owner}이(가) {expires}까지 예외 승인: {reason}]",
    "v.waiver.applied_scoped": "{finding} [{owner}이(가) {module} / {reference}에 한하여 {expires}까지 예외 승인: {reason}]",
    "v.waiver.not_covering": "{finding} [{owner}의 예외 승인은 {module} / {reference}에 한정되어 이 결과에는 적용되지 않습니다]",
    "v.waiver.expired": "{finding} [{owner}의 예외 승인은 {expires}에 만료됨]",
    "v.waiver.any_module": "모든 모듈", "v.waiver.any_reference": "모든 참조 모델",
    "v.lic.denied": "{license}은(는) 금지 목록에 있습니다",
    "v.lic.not_allowed": "{license}은(는) 허용 목록({allowed})에 없습니다",
    "v.lic.third_party": "{license}은(는) 제3자 모델 라이선스입니다",
    "v.lic.obligation": "{license}은(는) 금지된 의무 조항({obligation})을 부과합니다: \u201c{clause}\u201d",
    "v.lic.not_recorded": "레지스트리에 {reference}의 라이선스가 기록되어 있지 않습니다",
    "v.lic.problem": "{problem} [{where:commas}]",
    "v.lic.where_derived": "모듈 {module}({reference}에서 파생)", "v.lic.where_module": "모듈 {module}",
    "v.lic.finding": "{file}: {license} (신뢰도 {confidence:num2}, {source})",
    "v.lic.finding_obligations": "{file}: {license} (신뢰도 {confidence:num2}, {source}); 의무 조항: {obligations}",
    "v.lic.inherits": "모듈 {module}은(는) {license} 라이선스인 {reference}에서 파생되었으므로 그 조건이 해당 모듈에 적용됩니다",
    "v.lic.unknown_inherited": "모듈 {module}은(는) {reference}에서 카탈로그에 없는 라이선스 {license}를 이어받습니다",
    "v.lic.unknown_inherited_all": "{items:semicolons} (알 수 없는 경우는 통과로 보지 않습니다)",
    "v.lic.none_found": "라이선스를 찾지 못했습니다 (알 수 없는 경우는 통과로 보지 않습니다)",
    "v.lic.none_confident": "신뢰도 {min:num2} 이상으로 식별된 라이선스가 없습니다 (알 수 없는 경우는 통과로 보지 않습니다)",
    "v.lic.doubtful": "라이선스 출처 {n}건을 식별하지 못했습니다: {files}",
    "v.lic.pass": "{licenses} 라이선스가 적용되며, 금지된 라이선스나 의무 조항이 없습니다",
    "v.lin.hint": "{file}: {key} = {value}",
    "v.lin.undeclared": "신고되지 않은 파생: 모듈 {module}(파라미터의 {share:pct1})은(는) {reference}에서 파생되었으나 "
                        "제출물이 이를 신고하지 않았습니다",
    "v.lin.declared_detected": "신고 내용과 검출 결과 일치: 모듈 {module}은(는) {reference}에서 파생되었습니다({declared}(으)로 신고). "
                               "{reference}의 라이선스({license})가 적용됩니다",
    "v.lin.third_party": "제3자의 사전 학습 모델을 조상 모델로 신고하였습니다: {ancestor}",
    "v.lin.not_detected": "신고된 조상 모델 {ancestor}이(가) 검출되지 않았습니다({why}). 검토가 필요합니다",
    "v.lin.not_registered": "해당 모델의 가중치가 레지스트리에 없어 신고 내용을 확인할 수 없음",
    "v.lin.no_derivation": "가중치에서 해당 모델로부터의 파생이 나타나지 않음",
    "v.lin.review": "검토 중인 모듈이 선언되지 않은 참조 모델에서 파생되었을 수 있습니다: {modules:commas}",
    "v.lin.none": "신고된 조상 모델이 없고 검출된 파생도 없습니다",
    "v.lin.agrees": "신고된 계보가 가중치 분석 결과와 일치합니다",
    "v.lin.unverified": "비교된 것이 없어 파생 여부를 배제할 수 없습니다({why})",
    "v.lin.no_module_compared": "어떤 모듈의 가중치도 등록된 참조 모델과 비교할 수 없었음",
    "v.disc.missing_used": "제3자 구성요소 목록(THIRD_PARTY.yaml 또는 모델 카드의 `third_party:`)이 없으나, 제출물은 다음을 "
                           "사용하거나 신고하였습니다: {names}",
    "v.disc.missing": "제3자 구성요소 목록이 없습니다 (구성요소가 없는 경우에도 `components: []`를 담은 THIRD_PARTY.yaml로 신고합니다)",
    "v.disc.component": "{name}({role}), 리비전 {revision}, 라이선스 {license}", "v.disc.missing_value": "누락",
    "v.disc.missing_fields": "{name}: {fields} 누락",
    "v.disc.undisclosed": "검출된 조상 모델 {reference}이(가) 목록에 없습니다",
    "v.disc.undeclared_base": "신고된 기반 모델 {name}이(가) 목록에 없습니다",
    "v.disc.fail": "{file}: {problems:semicolons}",
    "v.disc.pass": "{file}에 제3자 구성요소 {n}개가 빠짐없이 기재되어 있습니다",
}
