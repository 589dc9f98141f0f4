"""The journey as one self-contained HTML document: no server, no kernel, no external URL.

What a learner sees, top to bottom:

* the **map**: an SVG drawing of the devices the request crosses, and the PDU (a small
  coloured box labelled with its top protocol) moving from device to device;
* the **controls**: Back, Play/Pause and Step buttons (all focusable, with ARIA labels;
  the arrow keys and the space bar step too), and a live region that reads out the
  current event;
* the **event list**: every event in order, the selected one highlighted;
* the **In** and **Out** panels of the selected event: the seven OSI layers as a stack,
  coloured with the one shared palette (:mod:`osilab.layers.palette`). *In* fills from
  layer 1 upwards to the layer where the device stopped reading; the layers above stay
  grey ("not read"). *Out* shows, from the top down, what the device kept, rewrote or
  created. Each layer has its one-sentence reason. Under each stack, the frame's bytes,
  each byte coloured by the layer that owns it.

Everything is inline: CSS in a ``<style>``, the behaviour in one ``<script>``, the data
as JSON in a ``<script type="application/json">``, the drawing as inline SVG (without an
``xmlns`` attribute, which HTML does not need). The same fragment works in a notebook
(``Journey._repr_html_``), inside another page (the tour) and as a standalone file.
Fonts are large enough for a projector.

This module builds text; it writes no file.
"""

from __future__ import annotations

import html
import json
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

from osilab.journey.events import JourneyEvent
from osilab.journey.network import Device
from osilab.layers import osi_name
from osilab.layers.palette import OSI_COLOURS, colour_for

__all__ = ["journey_html", "compare_html", "layout", "Shown", "CSS", "SCRIPT"]


class Shown(Protocol):
    """What the view reads of a journey (:class:`osilab.journey.trip.Journey` has it all).

    The view knows a journey only by these attributes, so it depends on the journey's
    records (:mod:`osilab.journey.events`) and never on the code that builds them.
    """

    @property
    def request_id(self) -> str: ...
    @property
    def capture(self) -> str: ...
    @property
    def events(self) -> tuple[JourneyEvent, ...]: ...
    @property
    def devices(self) -> tuple[Device, ...]: ...
    @property
    def links(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def balancer(self) -> str | None: ...
    @property
    def notes(self) -> tuple[str, ...]: ...

    def balancer_event(self) -> JourneyEvent | None: ...

    def to_json(self) -> dict[str, Any]: ...


#: Role -> map column (left to right: client, balancer, instance, app, bridge, stores).
_COLUMN = {
    "client": 0,
    "alb": 1,
    "nlb": 1,
    "l4proxy": 1,
    "instance": 2,
    "app": 3,
    "switch": 4,
    "redis": 5,
    "postgresql": 5,
}
_ROLE_FILL = {
    "client": "#EEF3FB",
    "alb": "#FBEFE6",
    "nlb": "#FDF5E2",
    "l4proxy": "#FDF5E2",
    "instance": "#EAF6F1",
    "app": "#F4EEF8",
    "switch": "#EEF7FC",
    "redis": "#FBEDED",
    "postgresql": "#EDF0FA",
}
_BOX_W, _BOX_H, _COL_W, _ROW_H, _MARGIN = 172, 70, 204, 100, 20


def layout(journey: Shown) -> dict[str, tuple[int, int]]:
    """Device -> (x, y) centre on the map: columns by role, rows in order of appearance."""
    columns: dict[int, list[str]] = {}
    fallback = 0
    for device in journey.devices:
        column = _COLUMN.get(device.role)
        if column is None:
            column = fallback
        fallback = column + 1
        columns.setdefault(column, []).append(device.name)
    used = sorted(columns)
    rows = max((len(names) for names in columns.values()), default=1)
    positions = {}
    for slot, column in enumerate(used):
        names = columns[column]
        for row, name in enumerate(names):
            offset = (rows - len(names)) * _ROW_H / 2
            positions[name] = (
                _MARGIN + _BOX_W // 2 + slot * _COL_W,
                int(_MARGIN + 44 + _BOX_H // 2 + offset + row * _ROW_H),
            )
    return positions


def _svg(journey: Shown, uid: str) -> str:
    positions = layout(journey)
    width = max((x for x, _ in positions.values()), default=0) + _BOX_W // 2 + _MARGIN
    height = max((y for _, y in positions.values()), default=0) + _BOX_H // 2 + _MARGIN + 10
    parts = [
        f'<svg class="osj-map" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{uid}-map-title" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{uid}-map-title">Devices on the path of request {html.escape(journey.request_id)}: '
        f"{html.escape(', '.join(d.name for d in journey.devices))}</title>"
    ]
    for a, b in journey.links:
        if a in positions and b in positions:
            (x1, y1), (x2, y2) = positions[a], positions[b]
            parts.append(f'<line class="osj-link" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>')
    for device in journey.devices:
        x, y = positions[device.name]
        fill = _ROLE_FILL.get(device.role, "#F2F2F2")
        address = device.addresses[0] if device.addresses else ""
        parts.append(
            f'<g class="osj-dev" data-dev="{html.escape(device.name)}" transform="translate({x - _BOX_W // 2},'
            f'{y - _BOX_H // 2})"><rect width="{_BOX_W}" height="{_BOX_H}" rx="10" fill="{fill}"/>'
            f'<text x="{_BOX_W // 2}" y="31" class="osj-dev-name">{html.escape(device.name)}</text>'
            f'<text x="{_BOX_W // 2}" y="58" class="osj-dev-sub">{html.escape(address or device.role)}</text></g>'
        )
    parts.append(
        '<g class="osj-pdu" aria-hidden="true"><g class="osj-pdu-body">'
        '<rect x="-36" y="-15" width="72" height="30" rx="7"/><text x="0" y="6">PDU</text></g></g>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _event_list(journey: Shown, uid: str) -> str:
    items = []
    for event in journey.events:
        arrow = "&#8594;" if event.direction == "request" else "&#8592;"
        label = (
            f"Event {event.index + 1}: {event.device.name}, {event.direction}, reads up to layer "
            f"{event.stopped_at}. {event.summary}"
        )
        items.append(
            f'<li><button type="button" class="osj-ev osj-{event.direction}" data-i="{event.index}" '
            f'aria-label="{html.escape(label)}"><span class="osj-ev-no">{event.index + 1}</span>'
            f'<span class="osj-ev-dev">{html.escape(event.device.name)}</span>'
            f'<span class="osj-ev-dir" aria-hidden="true">{arrow}</span>'
            f'<span class="osj-ev-stop">L{event.stopped_at or "-"}</span>'
            f'<span class="osj-ev-msg">{html.escape(_short(event.message, 46))}</span></button></li>'
        )
    return f'<ol class="osj-list" aria-label="Events of request {html.escape(journey.request_id)}">{"".join(items)}</ol>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _uid(journey: Shown, salt: str) -> str:
    digest = zlib.crc32(
        f"{journey.capture}|{journey.request_id}|{len(journey.events)}|{salt}".encode()
    )
    return f"osj{digest:08x}"


def _widget(journey: Shown, *, start: int = 0, salt: str = "") -> str:
    """One journey's interactive view (a ``<section>``); needs :data:`CSS` and :data:`SCRIPT` once per page."""
    uid = _uid(journey, salt)
    data = journey.to_json()
    data["start"] = start
    data["positions"] = layout(journey)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    balancer = f", balancer: {html.escape(journey.balancer)}" if journey.balancer else ""
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in journey.notes)
    return (
        f'<section class="osj" id="{uid}" data-osj tabindex="0" aria-roledescription="journey" '
        f'aria-label="Journey of request {html.escape(journey.request_id)}; arrow keys or space step through the events">'
        f'<header class="osj-head"><h2>Request {html.escape(journey.request_id)}</h2>'
        f"<p>{html.escape(journey.capture)}: {len(journey.events)} events{balancer}</p></header>"
        f'<div class="osj-controls" role="toolbar" aria-label="Journey controls">'
        f'<button type="button" data-act="back" aria-label="Back: previous event">&#9664; Back</button>'
        f'<button type="button" data-act="play" aria-label="Play the journey" aria-pressed="false">&#9654; Play</button>'
        f'<button type="button" data-act="step" aria-label="Step: next event">Step &#9654;</button>'
        + (
            '<button type="button" data-act="balancer" aria-label="Go to the balancer event">'
            "Balancer</button>"
            if journey.balancer
            else ""
        )
        + f'<span class="osj-pos" aria-live="polite" aria-atomic="true"></span></div>'
        f"{_svg(journey, uid)}"
        f'<p class="osj-now" aria-live="polite"></p>'
        f'<div class="osj-body">{_event_list(journey, uid)}'
        f'<div class="osj-panels">'
        f'<div class="osj-panel osj-in" role="region" aria-label="In layers"><h3 class="osj-in-title">In</h3>'
        f'<div class="osj-stack"></div><div class="osj-bytes"></div></div>'
        f'<div class="osj-panel osj-out" role="region" aria-label="Out layers"><h3 class="osj-out-title">Out</h3>'
        f'<div class="osj-stack"></div><div class="osj-bytes"></div></div>'
        f"</div></div>"
        + (
            f'<details class="osj-notes"><summary>How the hops were joined</summary><ul>{notes}</ul></details>'
            if notes
            else ""
        )
        + f'<script type="application/json" class="osj-data">{payload}</script>'
        f"<noscript><p>This view needs JavaScript for the layer panels; the event list above still reads "
        f"in order.</p></noscript></section>"
    )


def _palette_json() -> str:
    colours = {str(osi): colour for osi, colour in OSI_COLOURS.items()}
    names = {str(osi): osi_name(osi) for osi in range(1, 8)}
    return json.dumps({"colours": colours, "names": names})


CSS = """
.osj-page{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:18px 24px;
 background:#fff;color:#111;font-size:18px}
.osj-page h1{font-size:30px;margin:4px 0 12px}
.osj{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:18px;line-height:1.35;color:#111;
 border:2px solid #d0d4da;border-radius:12px;padding:12px 16px;margin:10px 0;background:#fff;outline:none}
.osj:focus-visible{border-color:#0072B2;box-shadow:0 0 0 3px #0072B255}
.osj h2{font-size:26px;margin:0}.osj h3{font-size:20px;margin:4px 0 8px}
.osj-head{display:flex;align-items:baseline;gap:18px;flex-wrap:wrap}.osj-head p{margin:0;color:#333}
.osj-controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:10px 0 4px}
.osj-controls button{font-size:20px;padding:8px 18px;border-radius:8px;border:2px solid #333;background:#f6f6f6;
 color:#111;cursor:pointer;min-width:110px}
.osj-controls button:hover{background:#e8eef7}
.osj button:focus-visible{outline:4px solid #0072B2;outline-offset:2px}
.osj-controls button[aria-pressed=true]{background:#0072B2;color:#fff}
.osj-pos{font-size:20px;font-weight:600;margin-left:8px}
.osj-map{display:block;max-height:270px;margin:4px 0}
.osj-link{stroke:#9aa3ad;stroke-width:3}
.osj-dev rect{stroke:#555;stroke-width:2}
.osj-dev-name{font-size:20px;font-weight:700;text-anchor:middle;fill:#111}
.osj-dev-sub{font-size:15px;text-anchor:middle;fill:#333}
.osj-dev.osj-active rect{stroke:#0072B2;stroke-width:5}
.osj-dev.osj-from rect{stroke:#0072B2;stroke-width:2;stroke-dasharray:6 4}
.osj-pdu rect{stroke:#111;stroke-width:2}.osj-pdu text{font-size:15px;font-weight:700;text-anchor:middle;fill:#000}
.osj-now{font-size:20px;margin:6px 0 10px;padding:8px 12px;background:#f4f6f9;border-left:6px solid #0072B2;
 min-height:1.4em}
.osj-body{display:grid;grid-template-columns:minmax(280px,1fr) 2.6fr;gap:16px;align-items:start}
.osj-list{list-style:none;margin:0;padding:0;max-height:640px;overflow-y:auto;border:1px solid #d0d4da;
 border-radius:8px}
.osj-ev{display:flex;gap:8px;align-items:baseline;width:100%;text-align:left;font-size:17px;padding:6px 8px;
 border:0;border-bottom:1px solid #e4e7eb;background:#fff;color:#111;cursor:pointer}
.osj-ev:hover{background:#eef3fb}
.osj-ev[aria-current=step]{background:#dbe9f7;box-shadow:inset 6px 0 0 #0072B2;font-weight:600}
.osj-ev-no{min-width:1.8em;color:#333}.osj-ev-dev{min-width:4.2em;font-weight:700}
.osj-ev-stop{font-family:ui-monospace,Menlo,Consolas,monospace;background:#eee;border-radius:4px;padding:0 4px}
.osj-ev-msg{color:#222;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.osj-response .osj-ev-dir{color:#7a3d00}.osj-request .osj-ev-dir{color:#00507a}
.osj-panels{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.osj-panel{border:1px solid #d0d4da;border-radius:8px;padding:8px 10px;min-width:0}
.osj-row{display:grid;grid-template-columns:3.2em 1fr;gap:10px;margin:3px 0;border-radius:6px;padding:0;
 background:#f3f4f6;color:#555;border:2px solid transparent;overflow:hidden}
.osj-row>div:last-child{padding:4px 6px 4px 0}
.osj-row .osj-tag{padding:4px 0;text-align:center}
.osj-row.osj-thin{font-size:14px}.osj-row.osj-thin .osj-tag{padding:1px 0;font-size:14px}
.osj-row.osj-thin>div:last-child{padding:1px 6px 1px 0}
.osj-row.osj-on{color:#000}
.osj-row.osj-stop{border-color:#111;border-width:3px}
.osj-tag{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:17px}
.osj-act{display:inline-block;font-size:14px;font-weight:700;text-transform:uppercase;border-radius:4px;padding:0 6px;
 margin-right:6px;background:#fff;border:1px solid #111}
.osj-detail{font-size:16px;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-word}
.osj-why{font-size:16px;margin-top:2px}
.osj-src{font-size:13px;border-radius:4px;padding:0 5px;margin-left:6px;background:#111;color:#fff;white-space:nowrap}
.osj-empty{color:#444;font-style:italic;margin:6px 0}
.osj-bytes{margin-top:8px}
.osj-bytes pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px;line-height:1.45;margin:0;
 max-height:260px;overflow:auto;background:#fff;border:1px solid #e4e7eb;padding:4px}
.osj-legend span{display:inline-block;font-size:14px;padding:1px 6px;margin:2px 4px 2px 0;border-radius:4px;color:#000}
.osj-notes{margin-top:10px;font-size:16px}
.osj-pair{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
.osj-pair>.osj{flex:1 1 720px;min-width:0}
.osj-pair .osj-body{grid-template-columns:1fr}.osj-pair .osj-list{max-height:220px}
.osj-pair .osj-dev-name{font-size:30px}.osj-pair .osj-dev-sub{font-size:22px}
.osj-pair .osj-pdu-body{transform:scale(1.45)}
.osj-compare{border-collapse:collapse;font-size:18px;margin:6px 0 14px}
.osj-compare th,.osj-compare td{border:1px solid #c8cdd3;padding:6px 10px;text-align:left;vertical-align:top}
@media (max-width:1100px){.osj-body{grid-template-columns:1fr}.osj-panels{grid-template-columns:1fr}}
@media (prefers-reduced-motion:reduce){.osj *{transition:none!important}}
"""

SCRIPT = r"""
(function(){
var PAL=__PALETTE__;
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=text;return e;}
function colour(osi){return PAL.colours[String(osi)]||"#BBBBBB";}
function tint(hex,k){var n=parseInt(hex.slice(1),16),r=n>>16,g=(n>>8)&255,b=n&255;
  function m(c){return Math.round(c*k+255*(1-k));}return "rgb("+m(r)+","+m(g)+","+m(b)+")";}
function hexdump(view){
  var box=el("div");
  if(!view){box.appendChild(el("p","osj-empty","No frame on this side."));return box;}
  var bytes=[];for(var i=0;i<view.hex.length;i+=2)bytes.push(parseInt(view.hex.substr(i,2),16));
  var owner=new Array(bytes.length).fill(-1);
  view.layers.forEach(function(l,k){for(var j=l.offset;j<Math.min(bytes.length,l.offset+l.length);j++)owner[j]=k;});
  var cap=el("div","osj-legend");
  cap.appendChild(el("span",null,"packet "+view.no+" on "+view.hop+", "+view.length+" bytes:"));
  cap.lastChild.style.background="transparent";
  view.layers.forEach(function(l){var s=el("span",null,l.name+" L"+l.osi);s.style.background=colour(l.osi);s.title=l.summary;cap.appendChild(s);});
  box.appendChild(cap);
  var pre=el("pre");pre.setAttribute("aria-label","bytes of packet "+view.no+", coloured by layer");
  for(var row=0;row<bytes.length;row+=16){
    pre.appendChild(document.createTextNode(("000"+row.toString(16)).slice(-4)+"  "));
    var ascii=[];
    for(var b=row;b<Math.min(row+16,bytes.length);b++){
      var s=el("span",null,("0"+bytes[b].toString(16)).slice(-2));
      var o=owner[b];if(o>=0){s.style.background=colour(view.layers[o].osi);s.title=view.layers[o].name;}
      pre.appendChild(s);pre.appendChild(document.createTextNode(" "));
      var c=bytes[b]>=32&&bytes[b]<127?String.fromCharCode(bytes[b]):".";
      var a=el("span",null,c);if(o>=0)a.style.background=colour(view.layers[o].osi);ascii.push(a);
    }
    for(var pad=bytes.length-row;pad<16;pad++)pre.appendChild(document.createTextNode("   "));
    pre.appendChild(document.createTextNode(" "));ascii.forEach(function(a){pre.appendChild(a);});
    pre.appendChild(document.createTextNode("\n"));
  }
  if(view.length>bytes.length)pre.appendChild(document.createTextNode("... "+(view.length-bytes.length)+" more bytes"));
  box.appendChild(pre);return box;
}
function stack(steps,mode,stopped){
  var box=el("div");var byOsi={};steps.forEach(function(s){byOsi[s.osi]=s;});
  if(!steps.length){box.appendChild(el("p","osj-empty",mode==="in"?"Nothing read: the PDU starts here.":"Nothing sent: the journey ends here."));return box;}
  for(var osi=7;osi>=1;osi--){
    var s=byOsi[osi];var row=el("div","osj-row");row.setAttribute("data-osi",String(osi));
    var tag=el("div","osj-tag","L"+osi);row.appendChild(tag);var body=el("div");
    if(s){
      row.className+=" osj-on";row.style.background=tint(colour(osi),0.28);tag.style.background=colour(osi);
      if(s.action==="stop")row.className+=" osj-stop";
      var head=el("div");head.appendChild(el("span","osj-act",s.action==="stop"?"read, stop":s.action));
      head.appendChild(el("b",null,s.name+" "));head.appendChild(el("span","osj-detail",s.detail));
      body.appendChild(head);var why=el("div","osj-why",s.why);
      if(s.source!=="capture"){why.appendChild(el("span","osj-src",s.source));}
      body.appendChild(why);row.setAttribute("aria-label","Layer "+osi+" "+s.name+": "+s.action+". "+s.detail+". "+s.why);
    }else{
      var note=(mode==="in"&&osi>stopped)?"not read":(osi===5||osi===6)?"no separate protocol here":"not involved";
      if(osi===5||osi===6)row.className+=" osj-thin";
      body.appendChild(el("span",null,PAL.names[String(osi)]+": "+note));
    }
    row.appendChild(body);box.appendChild(row);
  }
  return box;
}
function init(root){
  if(root.getAttribute("data-ready"))return;root.setAttribute("data-ready","1");
  var data=JSON.parse(root.querySelector("script.osj-data").textContent);
  var events=data.events,pos=data.positions,current=-1,timer=null,frame=null;
  var buttons=root.querySelectorAll(".osj-ev"),devs={};
  root.querySelectorAll(".osj-dev").forEach(function(g){devs[g.getAttribute("data-dev")]=g;});
  var pdu=root.querySelector(".osj-pdu"),list=root.querySelector(".osj-list");
  var reduce=window.matchMedia&&window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  function place(x,y){pdu.setAttribute("transform","translate("+x+","+(y-58)+")");}
  function move(from,to){
    if(frame)cancelAnimationFrame(frame);
    var a=pos[from]||pos[to],b=pos[to];if(!b)return;
    if(reduce||!a||a===b){place(b[0],b[1]);return;}
    var t0=null;function tick(t){if(t0===null)t0=t;var k=Math.min(1,(t-t0)/550);var e=k<.5?2*k*k:1-Math.pow(-2*k+2,2)/2;
      place(a[0]+(b[0]-a[0])*e,a[1]+(b[1]-a[1])*e);if(k<1)frame=requestAnimationFrame(tick);}
    frame=requestAnimationFrame(tick);
  }
  function select(i,animate){
    if(i<0||i>=events.length)return;current=i;var ev=events[i];
    buttons.forEach(function(b,k){if(k===i)b.setAttribute("aria-current","step");else b.removeAttribute("aria-current");});
    var btn=buttons[i];if(btn&&list){var top=btn.offsetTop-list.offsetTop;
      if(top<list.scrollTop||top+btn.offsetHeight>list.scrollTop+list.clientHeight)list.scrollTop=Math.max(0,top-40);}
    Object.keys(devs).forEach(function(n){devs[n].classList.remove("osj-active","osj-from");});
    if(devs[ev.device])devs[ev.device].classList.add("osj-active");
    if(ev.came_from&&devs[ev.came_from])devs[ev.came_from].classList.add("osj-from");
    var top=(ev.in.concat(ev.out)).reduce(function(m,s){return s.osi>m.osi?s:m;},{osi:0,name:""});
    pdu.querySelector("rect").setAttribute("fill",colour(top.osi||2));
    pdu.querySelector("text").textContent=(top.name||"frame").toUpperCase();
    if(animate)move(ev.came_from||ev.device,ev.device);else place(pos[ev.device][0],pos[ev.device][1]);
    root.querySelector(".osj-pos").textContent="Event "+(i+1)+" of "+events.length+": "+ev.device+" ("+ev.direction+")";
    root.querySelector(".osj-now").textContent=ev.summary;
    var stopTxt=ev.stopped_at?"stopped at layer "+ev.stopped_at+" ("+PAL.names[String(ev.stopped_at)]+")":"read nothing";
    root.querySelector(".osj-in-title").textContent="In: what "+ev.device+" read, from L1 up \u2014 "+stopTxt;
    root.querySelector(".osj-out-title").textContent=ev.goes_to?"Out: what "+ev.device+" sends to "+ev.goes_to+", from the top down":"Out: nothing (the journey ends here)";
    var inPanel=root.querySelector(".osj-in"),outPanel=root.querySelector(".osj-out");
    inPanel.querySelector(".osj-stack").replaceChildren(stack(ev.in,"in",ev.stopped_at));
    outPanel.querySelector(".osj-stack").replaceChildren(stack(ev.out,"out",0));
    inPanel.querySelector(".osj-bytes").replaceChildren(hexdump(ev.packet_in));
    outPanel.querySelector(".osj-bytes").replaceChildren(hexdump(ev.packet_out));
    root.setAttribute("data-current",String(i));
  }
  function step(d){select(Math.max(0,Math.min(events.length-1,current+d)),d>0);}
  function play(on){
    var b=root.querySelector('[data-act="play"]');
    if(timer){clearInterval(timer);timer=null;}
    if(on){if(current>=events.length-1)select(0,false);
      timer=setInterval(function(){if(current>=events.length-1){play(false);return;}step(1);},1600);}
    b.setAttribute("aria-pressed",on?"true":"false");b.textContent=on?"\u275A\u275A Pause":"\u25B6 Play";
    b.setAttribute("aria-label",on?"Pause the journey":"Play the journey");
  }
  root.querySelectorAll("[data-act]").forEach(function(b){b.addEventListener("click",function(){
    var act=b.getAttribute("data-act");
    if(act==="step"){play(false);step(1);}else if(act==="back"){play(false);step(-1);}
    else if(act==="play"){play(!timer);}
    else if(act==="balancer"){play(false);for(var k=0;k<events.length;k++){if(events[k].device===data.balancer&&events[k].direction==="request"){select(k,true);break;}}}
  });});
  buttons.forEach(function(b){b.addEventListener("click",function(){play(false);select(parseInt(b.getAttribute("data-i"),10),true);});});
  root.addEventListener("keydown",function(e){
    var onButton=e.target&&e.target.tagName==="BUTTON";
    if(e.key==="ArrowRight"||e.key==="ArrowDown"||((e.key===" "||e.key==="Spacebar")&&!onButton)){e.preventDefault();play(false);step(1);}
    else if(e.key==="ArrowLeft"||e.key==="ArrowUp"){e.preventDefault();play(false);step(-1);}
    else if(e.key==="Home"){e.preventDefault();play(false);select(0,false);}
    else if(e.key==="End"){e.preventDefault();play(false);select(events.length-1,false);}
  });
  select(Math.min(data.start||0,events.length-1),false);
}
document.querySelectorAll("[data-osj]").forEach(init);
})();
"""


def _assets() -> str:
    return f"<style>{CSS}</style><script>{SCRIPT.replace('__PALETTE__', _palette_json())}</script>"


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f'<body class="osj-page">{body}'
        f"<script>{SCRIPT.replace('__PALETTE__', _palette_json())}</script></body></html>\n"
    )


def journey_html(
    journeys: Sequence[Shown], *, standalone: bool = True, title: str | None = None
) -> str:
    """The interactive view of one or more journeys: a whole document, or a fragment.

    A fragment carries its own ``<style>`` and ``<script>`` (the script initialises every
    view on the page once), so it can be pasted into a notebook output or another page.
    """
    widgets = "".join(_widget(j, salt=str(n)) for n, j in enumerate(journeys))
    heading = title or "Journey of request " + ", ".join(j.request_id for j in journeys)
    if standalone:
        return _document(heading, f"<h1>{html.escape(heading)}</h1>{widgets}")
    return (
        f'<div class="osj-fragment"><style>{CSS}</style>{widgets}'
        f"<script>{SCRIPT.replace('__PALETTE__', _palette_json())}</script></div>"
    )


def _compare_rows(journeys: Sequence[Shown]) -> str:
    rows = []
    for journey in journeys:
        event = journey.balancer_event()
        if event is None:
            rows.append(
                f"<tr><td>{html.escape(journey.request_id)}</td><td colspan='4'>no balancer found</td></tr>"
            )
            continue
        did = "; ".join(f"L{step.osi} {step.action}" for step in event.out_layers if step.osi >= 3)
        swatch = colour_for(event.stopped_at)
        rows.append(
            f"<tr><td>{html.escape(journey.request_id)}</td><td><b>{html.escape(event.device.name)}</b>: "
            f"{html.escape(event.device.title)}</td>"
            f"<td style='background:{swatch}'>layer {event.stopped_at} ({html.escape(osi_name(event.stopped_at))})</td>"
            f"<td>{html.escape(did)}</td><td>{html.escape(event.in_layers[-1].why)}</td></tr>"
        )
    return (
        "<table class='osj-compare'><tr><th>request</th><th>balancer</th><th>read up to</th>"
        "<th>on the way out</th><th>why it stopped there</th></tr>" + "".join(rows) + "</table>"
    )


def compare_html(first: Shown, second: Shown, *, standalone: bool = True) -> str:
    """Two journeys side by side, each opened at its balancer's event, with a summary table."""
    pair = (first, second)
    widgets = "".join(
        _widget(j, start=(j.balancer_event().index if j.balancer_event() else 0), salt=f"cmp{n}")  # type: ignore[union-attr]
        for n, j in enumerate(pair)
    )
    heading = f"The same request, two balancers: {first.request_id} and {second.request_id}"
    body = (
        f"<h1>{html.escape(heading)}</h1>"
        "<p style='font-size:19px'>Each view opens at its balancer. The In stack shows how far up the "
        "balancer read before it chose a target; the Out stack shows what it changed.</p>"
        f"{_compare_rows(pair)}<div class='osj-pair'>{widgets}</div>"
    )
    if standalone:
        return _document(heading, body)
    return (
        f'<div class="osj-fragment"><style>{CSS}</style>{body}'
        f"<script>{SCRIPT.replace('__PALETTE__', _palette_json())}</script></div>"
    )
