#include "adapter/writeback/risk_assessment_sink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <optional>

#include "adapter/writeback/wording.hpp"
#include "fhir/bundle.hpp"
#include "fhir/risk_assessment.hpp"

namespace fra::writeback {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

// One round: up to one Bundle per writer, in score order.
struct RiskAssessmentSink::Round {
  std::vector<store::PendingWrite> pending;
  std::vector<std::vector<std::size_t>> chunks;  // indices into pending, one Bundle each
  std::vector<std::vector<fhir::BatchEntry>> bodies;
  std::int64_t last_score_id = 0;
};

RiskAssessmentSink::RiskAssessmentSink(const fhir::Client& client, store::WritebackState& state,
                                       const mapping::Pseudonymizer& ps,
                                       const score::ModelPackage& model,
                                       const std::vector<mapping::FeatureDefinition>& definitions,
                                       RiskAssessmentOptions options)
    : state_(state),
      ps_(ps),
      model_(model),
      definitions_(definitions),
      options_(std::move(options)) {
  for (int i = 0; i < std::max(1, options_.in_flight); ++i) {
    writers_.push_back(std::make_unique<fhir::Client>(client.options()));
    writers_.back()->on_retry(client.on_retry());
  }
}

RiskAssessmentSink::Round RiskAssessmentSink::read_round(std::int64_t after, WriteReport& rep) {
  const auto& m = model_.manifest;
  const std::size_t per = static_cast<std::size_t>(std::max(1, options_.batch));
  Round r;
  r.pending = state_.pending(m.name, static_cast<int>(per * writers_.size()), after);
  for (std::size_t k = 0; k < r.pending.size(); ++k) {
    const auto& pw = r.pending[k];
    r.last_score_id = std::max(r.last_score_id, pw.score_id);
    auto ref = ps_.open(pw.sealed_ref);
    if (!ref) {
      spdlog::error("patient {}: {}", pw.patient_key.substr(0, 12), ref.error().message);
      ++rep.failed;
      continue;
    }
    if (r.chunks.empty() || r.chunks.back().size() == per) {
      r.chunks.emplace_back();
      r.bodies.emplace_back();
    }
    const auto in = score_in_words(pw, m, definitions_, options_.identifier_system, ref.value());
    r.chunks.back().push_back(k);
    r.bodies.back().push_back({"PUT", fhir::conditional_path(in), fhir::build_risk_assessment(in)});
  }
  return r;
}

WriteReport RiskAssessmentSink::deliver(const std::atomic<bool>* stop) {
  WriteReport rep;
  const auto& m = model_.manifest;
  auto stopping = [stop] { return stop != nullptr && stop->load(); };
  // Rounds go in score order; the next is read and built while the one before is in flight, and
  // sent as soon as its writers are free, so the server is not left waiting on the database. A
  // write that fails stays pending for the next run, which retries it.
  using Outcomes = std::optional<std::vector<fhir::EntryOutcome>>;
  // Every Bundle of a round in flight at once, each on its own connection.
  auto send = [&](const Round& r) {
    std::vector<std::future<Outcomes>> sent;
    for (std::size_t i = 0; i < r.bodies.size(); ++i)
      sent.push_back(std::async(std::launch::async, [this, i, &r]() -> Outcomes {
        const auto t0 = std::chrono::steady_clock::now();
        auto resp = writers_[i]->post("", fhir::batch_bundle(r.bodies[i]));
        if (options_.on_batch)
          options_.on_batch(seconds_since(t0), static_cast<int>(r.bodies[i].size()));
        if (resp.status != 200) {
          spdlog::error("batch of {} RiskAssessments: HTTP {} {}", r.bodies[i].size(), resp.status,
                        fhir::operation_outcome_text(resp.body));
          return std::nullopt;
        }
        auto outcomes = fhir::parse_batch_response(resp.body, r.bodies[i].size());
        if (!outcomes) {
          spdlog::error("batch of {} RiskAssessments: {}", r.bodies[i].size(),
                        outcomes.error().message);
          return std::nullopt;
        }
        return std::move(outcomes).value();
      }));
    return sent;
  };

  // Rounds live on the heap: the requests in flight refer to their Bundles.
  auto current = std::make_unique<Round>(read_round(0, rep));
  auto sent = send(*current);
  while (!current->pending.empty()) {
    auto next =
        std::make_unique<Round>(stopping() ? Round{} : read_round(current->last_score_id, rep));
    std::vector<store::PendingWrite> written;
    std::exception_ptr error;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      Outcomes outcomes;
      try {
        outcomes = sent[i].get();
      } catch (...) {  // a transport failure after every retry: the others are still collected
        error = std::current_exception();
      }
      if (!outcomes) {
        rep.failed += static_cast<int>(current->chunks[i].size());
        continue;
      }
      for (std::size_t j = 0; j < current->chunks[i].size(); ++j) {
        const auto& pw = current->pending[current->chunks[i][j]];
        const auto& o = (*outcomes)[j];
        if (o.status == 200 || o.status == 201) {
          written.push_back(pw);
          (o.status == 201 ? rep.created : rep.updated) += 1;
        } else {
          spdlog::error("RiskAssessment for patient {}: HTTP {} {}", pw.patient_key.substr(0, 12),
                        o.status, o.problem);
          ++rep.failed;
        }
      }
    }
    if (error || (written.empty() && !sent.empty())) {
      // The server is down or refuses everything: stop; what was not written stays pending.
      state_.mark_written(m.name, written);
      if (error) std::rethrow_exception(error);
      break;
    }
    sent = send(*next);  // the writers are free: keep the server busy while the store is updated
    state_.mark_written(m.name, written);
    current = std::move(next);
  }
  return rep;
}

}  // namespace fra::writeback
